-- The rule behind each alert: the MITRE ATT&CK technique id it is evidence
-- of ("" for policy findings) and the version of the detector's logic that
-- raised it. Rows stored before this migration keep '' and 0 (unknown).
{{.AddColumn "alerts" "technique String AFTER detector"}}
{{.AddColumn "alerts" "rule_version UInt32 AFTER technique"}}
