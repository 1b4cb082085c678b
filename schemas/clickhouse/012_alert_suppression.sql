-- The suppression rule that matched an alert as it was raised: the rule's
-- id, its action (silence or lower) and, for lower, the severity the
-- detector gave before it was lowered. Rows stored before this migration,
-- and alerts no rule matched, keep ''.
{{.AddColumn "alerts" "suppressed_by String DEFAULT '' AFTER rule_version"}}
{{.AddColumn "alerts" "suppression_action String DEFAULT '' AFTER suppressed_by"}}
{{.AddColumn "alerts" "original_severity String DEFAULT '' AFTER suppression_action"}}
