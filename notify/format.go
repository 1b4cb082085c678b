package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// maxBodyBytes caps a rendered body (a runaway template).
const maxBodyBytes = 1 << 20

// message is an alert read from the stream: its JSON as published, and
// decoded.
type message struct {
	raw   []byte
	alert schemas.Alert
}

// decodeAlert decodes an alert as published on SESSIONMON_ALERTS.
func decodeAlert(raw []byte) (*message, error) {
	m := &message{raw: raw}
	if err := json.Unmarshal(raw, &m.alert); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAlert, err)
	}
	if m.alert.ID == "" || m.alert.Detector == "" || m.alert.Severity.Rank() == 0 {
		return nil, fmt.Errorf("%w: needs an id, a detector and a severity", ErrInvalidAlert)
	}
	return m, nil
}

// formatter turns an alert into a request body. Implementations are safe
// for concurrent use.
type formatter interface {
	format(m *message) (body []byte, contentType string, err error)
}

// newFormatter returns w's formatter; tmpl is its template source when
// the format is template.
func newFormatter(w *Webhook, tmpl, dashboardURL string) (formatter, error) {
	switch w.Format {
	case FormatJSON, "":
		return jsonFormat{}, nil
	case FormatSlack:
		return slackFormat{dashboardURL: dashboardURL}, nil
	case FormatOCSF:
		return ocsfFormat{dashboardURL: dashboardURL}, nil
	case FormatTemplate:
		t, err := parseTemplate(w.Name, tmpl)
		if err != nil {
			return nil, err
		}
		return templateFormat{t: t, contentType: w.ContentType, dashboardURL: dashboardURL, webhook: w.Name}, nil
	}
	return nil, fmt.Errorf("%w: format %q", ErrInvalidConfig, w.Format)
}

// alertURL links an alert in the dashboard, or "" without a dashboard URL.
func alertURL(dashboardURL, id string) string {
	if dashboardURL == "" {
		return ""
	}
	return strings.TrimSuffix(dashboardURL, "/") + "/alerts/" + url.PathEscape(id)
}

// jsonFormat sends the alert's JSON exactly as it was published.
type jsonFormat struct{}

func (jsonFormat) format(m *message) ([]byte, string, error) {
	return m.raw, "application/json", nil
}

// slackMessage is a Slack incoming-webhook message: text is the
// notification fallback, blocks the rich layout.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBlock is one Slack layout block (header, section or context).
type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// slackText is a Slack text object, plain_text or mrkdwn.
type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Slack limits: a header's text, a section's text.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
)

// slackFormat renders a Slack-compatible message.
type slackFormat struct{ dashboardURL string }

func (f slackFormat) format(m *message) ([]byte, string, error) {
	a := &m.alert
	sev := strings.ToUpper(string(a.Severity))
	title := a.Title
	if title == "" {
		title = a.Detector
	}
	msg := slackMessage{
		Text: truncate(slackEscape(fmt.Sprintf("[%s] %s: %s", sev, title, a.Summary)), slackSectionMax),
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(title, slackHeaderMax)}},
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(slackEscape(a.Summary), slackSectionMax)}},
			{Type: "section", Fields: []slackText{
				{Type: "mrkdwn", Text: "*Severity*\n" + sev},
				{Type: "mrkdwn", Text: "*Detector*\n" + slackEscape(a.Detector)},
				{Type: "mrkdwn", Text: "*App*\n" + slackEscape(a.App)},
				{Type: "mrkdwn", Text: "*Time*\n" + a.Time.UTC().Format(time.RFC3339)},
			}},
		},
	}
	if u := alertURL(f.dashboardURL, a.ID); u != "" {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section",
			Text: &slackText{Type: "mrkdwn", Text: "<" + u + "|Open alert in sessionmon>"}})
	}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "context",
		Elements: []slackText{{Type: "mrkdwn", Text: "alert " + slackEscape(a.ID)}}})
	b, err := json.Marshal(&msg)
	if err != nil {
		return nil, "", fmt.Errorf("encode slack message: %w", err)
	}
	return b, "application/json", nil
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// TemplateData is what a webhook template sees.
type TemplateData struct {
	// Alert is the alert (see schemas.Alert for its fields).
	Alert schemas.Alert
	// AlertURL links the alert in the dashboard, "" without dashboard_url.
	AlertURL string
	// Webhook is the webhook's name.
	Webhook string
}

// templateFuncs are available in templates: json renders a value as JSON,
// so that {{json .Alert.Summary}} is a safe JSON string.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

func parseTemplate(name, src string) (*template.Template, error) {
	t, err := template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w: template: %w", ErrInvalidConfig, err)
	}
	return t, nil
}

// templateFormat renders a configured text/template.
type templateFormat struct {
	t            *template.Template
	contentType  string
	dashboardURL string
	webhook      string
}

func (f templateFormat) format(m *message) ([]byte, string, error) {
	var b bytes.Buffer
	data := TemplateData{Alert: m.alert, AlertURL: alertURL(f.dashboardURL, m.alert.ID), Webhook: f.webhook}
	if err := f.t.Execute(&b, data); err != nil {
		return nil, "", fmt.Errorf("render template: %w", err)
	}
	if b.Len() > maxBodyBytes {
		return nil, "", fmt.Errorf("render template: body of %d bytes exceeds %d", b.Len(), maxBodyBytes)
	}
	return b.Bytes(), f.contentType, nil
}
