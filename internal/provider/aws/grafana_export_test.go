package aws

// GrafanaCommandForTest exposes grafanaCommand to the package's external tests.
var GrafanaCommandForTest = grafanaCommand
