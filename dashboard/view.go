package dashboard

// view is a page the handlers render: the template
// templates/views/<name>.html inside the layout. Handlers pass these
// constants, never a name, and the renderer parses exactly the views of
// viewNames at start, failing on any that is missing: the views the
// handlers can render are the views the boot check requires.
type view int

// The views, one per template in templates/views.
const (
	viewError view = iota
	viewLogin
	viewReauth
	viewOverview
	viewAlertList
	viewAlertShow
	viewSubjectSearch
	viewSubjectShow
	viewSessionShow
	viewDeadLetters
	viewWebhookDeliveries
	viewRetentionShow
	viewAuditList
	viewAPITokenList
	viewSuppressionList
	viewNetworkList

	numViews // not a view: the number of views
)

// viewNames are the views' template names (templates/views/<name>.html).
// Its length is numViews, so a view added above without a name here has
// the name "", which the renderer refuses.
var viewNames = [numViews]string{
	viewError:             "error",
	viewLogin:             "login",
	viewReauth:            "reauth",
	viewOverview:          "overview",
	viewAlertList:         "alert_list",
	viewAlertShow:         "alert_show",
	viewSubjectSearch:     "subject_search",
	viewSubjectShow:       "subject_show",
	viewSessionShow:       "session_show",
	viewDeadLetters:       "dead_letters",
	viewWebhookDeliveries: "webhook_deliveries",
	viewRetentionShow:     "retention_show",
	viewAuditList:         "audit",
	viewAPITokenList:      "tokens",
	viewSuppressionList:   "suppressions",
	viewNetworkList:       "networks",
}

// String returns the view's template name.
func (v view) String() string {
	if v < 0 || v >= numViews {
		return ""
	}
	return viewNames[v]
}
