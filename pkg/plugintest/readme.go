// Package plugintest holds helpers for plugin tests. Its main job: every
// YAML example in a plugin's README is loaded through pkg/config, so that
// the documentation cannot drift from what sluice accepts.
package plugintest

import (
	"os"
	"regexp"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// ReadmeExamples returns the ```yaml blocks of the README at path.
func ReadmeExamples(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var out []string
	for _, m := range yamlBlock.FindAllSubmatch(data, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// CheckReadme loads every YAML example of the README at path as a whole
// config file and fails the test for each one sluice rejects. It also
// fails when the README has no example at all. It returns the parsed
// configs for further checks.
func CheckReadme(t testing.TB, path string) []*config.Config {
	t.Helper()
	examples := ReadmeExamples(t, path)
	if len(examples) == 0 {
		t.Fatalf("%s has no ```yaml example", path)
	}
	var cfgs []*config.Config
	for i, ex := range examples {
		cfg, err := config.Parse(path, []byte(ex))
		if err != nil {
			t.Errorf("%s example %d is rejected:\n%v\n---\n%s", path, i+1, err, ex)
			continue
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}
