package integration

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/limitkit/limitkit/core"
	"github.com/pelletier/go-toml/v2"
)

// The same limits in JSON, YAML and TOML decode to the same core.Config,
// through its struct tags, with the decoders apps use (here the ones Gin
// already brings in), and build. This lives here to keep YAML and TOML
// libraries out of the root module.
func TestConfig_decodesAlikeFromJSONYAMLAndTOML(t *testing.T) {
	const jsonText = `{
  "failure": "fallback",
  "default": {"limit": "100/minute", "algorithm": "token-bucket", "burst": 20},
  "routes": {
    "POST /login": {"limit": "5/minute", "key": "ip"},
    "GET /healthz": {"exempt": true}
  },
  "limits": {
    "search": {"limit": "10/second;1000/hour", "key": "header:X-API-Key", "plans": {"pro": "100/second"}, "failure": "fail-open"}
  }
}`
	const yamlText = `
failure: fallback
default:
  limit: 100/minute
  algorithm: token-bucket
  burst: 20
routes:
  POST /login:
    limit: 5/minute
    key: ip
  GET /healthz:
    exempt: true
limits:
  search:
    limit: "10/second;1000/hour"
    key: "header:X-API-Key"
    plans:
      pro: 100/second
    failure: fail-open
`
	const tomlText = `
failure = "fallback"

[default]
limit = "100/minute"
algorithm = "token-bucket"
burst = 20

[routes."POST /login"]
limit = "5/minute"
key = "ip"

[routes."GET /healthz"]
exempt = true

[limits.search]
limit = "10/second;1000/hour"
key = "header:X-API-Key"
plans = { pro = "100/second" }
failure = "fail-open"
`
	var fromJSON, fromYAML, fromTOML core.Config
	if err := json.Unmarshal([]byte(jsonText), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(yamlText), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if err := toml.Unmarshal([]byte(tomlText), &fromTOML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Errorf("YAML decodes to\n%+v\nJSON to\n%+v", fromYAML, fromJSON)
	}
	if !reflect.DeepEqual(fromJSON, fromTOML) {
		t.Errorf("TOML decodes to\n%+v\nJSON to\n%+v", fromTOML, fromJSON)
	}
	set, err := core.NewLimitSet(fromYAML, core.ConfigLimiter(), core.ConfigPlanOf(func(*http.Request) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if m, _ := set.ForRoute("POST", "/login"); m == nil {
		t.Error("POST /login has no limit")
	}
	if m, _ := set.ForRoute("GET", "/healthz"); m != nil {
		t.Error("GET /healthz is limited; the config exempts it")
	}
}
