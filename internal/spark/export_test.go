package spark

// For the external tests.
var (
	DistArtifacts = distArtifacts
	JarArtifact   = jarArtifact
)
