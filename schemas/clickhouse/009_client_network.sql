-- The client's network as sessionmon's GeoIP databases describe it: the
-- organisation of the autonomous system, and the anonymous-network classes
-- (vpn, hosting, tor_exit, public_proxy, residential_proxy, anonymous) of an
-- anonymous-IP database. Rows stored before this migration keep empty values.
{{.AddColumn "events" "client_as_org String AFTER client_asn"}}
{{.AddColumn "events" "client_anonymity Array(String) AFTER geo_source"}}
