package agent_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/assertion"
)

// An htu with no host ("http://:") is the caller's mistake: 400 with a
// reason that says so, not a proof for "http:///".
func TestDPoPEndpointRefusesHostlessHTU(t *testing.T) {
	dp, _ := assertion.NewDPoP(newSigner(t), assertion.DPoPConfig{})
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "dpop", Client: &fakeSTS{dpop: dp}}})
	defer a.Close()
	hc := unixClient(serve(t, a, ""))
	for _, htu := range []string{"http://:", "https://:443/token", "http:///token"} {
		resp, err := hc.Post("http://agent/v1/dpop", "application/json", strings.NewReader(`{"profile":"dpop","htm":"POST","htu":"`+htu+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 400 || out["error"] != "invalid_request" || !strings.Contains(out["reason"], "host") || out["proof"] != "" {
			t.Errorf("htu %q: %d %v; want 400 invalid_request saying the host is missing", htu, resp.StatusCode, out)
		}
	}
}
