package notify

import (
	"encoding/json"
	"fmt"

	"github.com/sessionmon/sessionmon/schemas"
)

// OCSF identifiers of a Detection Finding (OCSF 1.1 and later,
// https://schema.ocsf.io/classes/detection_finding).
const (
	ocsfVersion       = "1.3.0"
	ocsfCategoryUID   = 2 // Findings
	ocsfClassUID      = 2004
	ocsfActivityNew   = 1 // Create: a new finding
	ocsfStatusNew     = 1
	ocsfAnalyticRule  = 1
	ocsfObservableUID = 10 // Resource UID
	ocsfObservableNet = 12 // Subnet
	ocsfProductName   = "sessionmon"
)

// ocsfSeverity maps our severities to OCSF severity_id and its caption.
var ocsfSeverity = map[schemas.Severity]struct {
	id   int
	name string
}{
	schemas.SeverityLow:      {2, "Low"},
	schemas.SeverityMedium:   {3, "Medium"},
	schemas.SeverityHigh:     {4, "High"},
	schemas.SeverityCritical: {5, "Critical"},
}

// ocsfFinding is an OCSF Detection Finding (class 2004), the subset
// sessionmon fills.
type ocsfFinding struct {
	ActivityID   int              `json:"activity_id"`
	ActivityName string           `json:"activity_name"`
	CategoryUID  int              `json:"category_uid"`
	CategoryName string           `json:"category_name"`
	ClassUID     int              `json:"class_uid"`
	ClassName    string           `json:"class_name"`
	TypeUID      int              `json:"type_uid"`
	TypeName     string           `json:"type_name"`
	SeverityID   int              `json:"severity_id"`
	Severity     string           `json:"severity"`
	StatusID     int              `json:"status_id"`
	Status       string           `json:"status"`
	Time         int64            `json:"time"`
	EndTime      int64            `json:"end_time"`
	Message      string           `json:"message"`
	FindingInfo  ocsfFindingInfo  `json:"finding_info"`
	Metadata     ocsfMetadata     `json:"metadata"`
	Resources    []ocsfResource   `json:"resources,omitempty"`
	Observables  []ocsfObservable `json:"observables,omitempty"`
	Unmapped     map[string]any   `json:"unmapped,omitempty"`
}

type ocsfFindingInfo struct {
	UID         string       `json:"uid"`
	Title       string       `json:"title"`
	Desc        string       `json:"desc"`
	Types       []string     `json:"types"`
	CreatedTime int64        `json:"created_time"`
	SrcURL      string       `json:"src_url,omitempty"`
	Analytic    ocsfAnalytic `json:"analytic"`
	Attacks     []ocsfAttack `json:"attacks,omitempty"`
}

type ocsfAnalytic struct {
	Name    string `json:"name"`
	UID     string `json:"uid"`
	Version string `json:"version,omitempty"`
	TypeID  int    `json:"type_id"`
	Type    string `json:"type"`
}

type ocsfAttack struct {
	Technique ocsfTechnique `json:"technique"`
	Tactic    ocsfTactic    `json:"tactic"`
}

type ocsfTechnique struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	SrcURL string `json:"src_url,omitempty"`
}

type ocsfTactic struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
}

type ocsfMetadata struct {
	Version string      `json:"version"`
	UID     string      `json:"uid"`
	Product ocsfProduct `json:"product"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// ocsfResource is a resource_details object: what the finding is about.
type ocsfResource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
	Name string `json:"name,omitempty"`
}

type ocsfObservable struct {
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

// ocsfFormat renders an OCSF Detection Finding for SIEMs that ingest OCSF
// (Amazon Security Lake, Splunk, Sentinel, Elastic and others).
type ocsfFormat struct{ dashboardURL string }

func (f ocsfFormat) format(m *message) ([]byte, string, error) {
	b, err := json.Marshal(ocsfFindingOf(&m.alert, f.dashboardURL))
	if err != nil {
		return nil, "", fmt.Errorf("encode ocsf finding: %w", err)
	}
	return b, "application/json", nil
}

// ocsfFindingOf maps an alert to a Detection Finding: time is when the
// engine raised it (detected_at) and end_time the event time of its
// triggering event; the detector is the analytic (a rule, versioned by the alert's rule_version), the ATT&CK
// technique the attack, and the pseudonyms of subject and session, the app
// and the source network the resources and observables.
func ocsfFindingOf(a *schemas.Alert, dashboardURL string) *ocsfFinding {
	sev, ok := ocsfSeverity[a.Severity]
	if !ok {
		sev.id, sev.name = 0, "Unknown"
	}
	title := a.Title
	if title == "" {
		title = a.Detector
	}
	// A finding's time is when it was created; the activity behind it
	// ends with the triggering event.
	created := a.DetectedAt.UnixMilli()
	if a.DetectedAt.IsZero() {
		created = a.Time.UnixMilli()
	}
	f := &ocsfFinding{
		ActivityID: ocsfActivityNew, ActivityName: "Create",
		CategoryUID: ocsfCategoryUID, CategoryName: "Findings",
		ClassUID: ocsfClassUID, ClassName: "Detection Finding",
		TypeUID: ocsfClassUID*100 + ocsfActivityNew, TypeName: "Detection Finding: Create",
		SeverityID: sev.id, Severity: sev.name,
		StatusID: ocsfStatusNew, Status: "New",
		Time:    created,
		EndTime: a.Time.UnixMilli(),
		Message: a.Summary,
		FindingInfo: ocsfFindingInfo{
			UID: a.ID, Title: title, Desc: a.Summary, Types: []string{a.Detector},
			CreatedTime: created,
			SrcURL:      alertURL(dashboardURL, a.ID),
			Analytic:    ocsfAnalytic{Name: a.Detector, UID: a.Detector, TypeID: ocsfAnalyticRule, Type: "Rule"},
		},
		Metadata: ocsfMetadata{Version: ocsfVersion, UID: a.ID,
			Product: ocsfProduct{Name: ocsfProductName, VendorName: ocsfProductName}},
	}
	if a.RuleVersion > 0 {
		f.FindingInfo.Analytic.Version = fmt.Sprint(a.RuleVersion)
	}
	if a.Technique != "" {
		t, ok := schemas.TechniqueByID(a.Technique)
		if !ok {
			t = schemas.Technique{ID: a.Technique}
		}
		f.FindingInfo.Attacks = []ocsfAttack{{
			Technique: ocsfTechnique{UID: t.ID, Name: t.Name, SrcURL: t.URL()},
			Tactic:    ocsfTactic{UID: t.Tactic.ID, Name: t.Tactic.Name},
		}}
	}
	resource := func(typ, uid, name string) {
		if uid == "" {
			return
		}
		f.Resources = append(f.Resources, ocsfResource{Type: typ, UID: uid, Name: name})
		f.Observables = append(f.Observables, ocsfObservable{Name: "resources.uid", TypeID: ocsfObservableUID, Type: "Resource UID", Value: uid})
	}
	resource("application", a.App, a.App)
	resource("user", a.Subject, "")
	resource("session", a.Session, "")
	if a.Source != nil && a.Source.IPPrefix != "" {
		f.Observables = append(f.Observables, ocsfObservable{Name: "unmapped.source.ip_prefix", TypeID: ocsfObservableNet, Type: "Subnet", Value: a.Source.IPPrefix})
	}
	// What OCSF has no attribute for travels as sessionmon's own fields.
	unmapped := map[string]any{}
	if a.Source != nil {
		unmapped["source"] = a.Source
	}
	if len(a.Details) > 0 {
		unmapped["details"] = a.Details
	}
	if len(a.Evidence) > 0 {
		unmapped["evidence"] = a.Evidence
	}
	if len(unmapped) > 0 {
		f.Unmapped = unmapped
	}
	return f
}
