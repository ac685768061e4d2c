package token

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// HelseID's issuers.
const (
	HelseIDIssuer     = "https://helseid-sts.nhn.no"
	HelseIDTestIssuer = "https://helseid-sts.test.nhn.no"
)

// ErrUnsupportedAlg: the server's discovery document does not list the
// algorithm of the assertion key or the DPoP key.
var ErrUnsupportedAlg = errors.New("token: algorithm not supported by the server")

// IsHelseID reports whether issuer is one of HelseID's: https, the host
// exactly helseid-sts.nhn.no or helseid-sts.test.nhn.no, no port, no path.
func IsHelseID(issuer string) bool {
	u, err := url.Parse(strings.TrimRight(issuer, "/"))
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	h := strings.ToLower(u.Host)
	return h == "helseid-sts.nhn.no" || h == "helseid-sts.test.nhn.no"
}

// DPoPByDefault tells whether a client of issuer asks for DPoP-bound
// tokens when its configuration does not say: yes for HelseID, whose own
// library (HelseID.Library) sends a proof with every token request, no
// elsewhere. Config.DPoP itself has no default; the CLI and profiles use
// this.
func DPoPByDefault(issuer string) bool { return IsHelseID(issuer) }

// checkAlgs refuses, before anything is signed or sent, a key whose
// algorithm the discovery document does not list. An absent list means
// no restriction.
func (c *Client) checkAlgs(md *Metadata) error {
	check := func(what, alg, field string, allowed []string) error {
		if len(allowed) == 0 || slices.Contains(allowed, alg) {
			return nil
		}
		return fmt.Errorf("%w: %s takes %s signed with %s, not %s (%s); use a key (or --alg) for one of those",
			ErrUnsupportedAlg, md.Issuer, what, strings.Join(oneLines(allowed), ", "), alg, field)
	}
	if err := check("client assertions", string(c.cfg.Signer.Alg()), "token_endpoint_auth_signing_alg_values_supported", md.TokenEndpointAuthAlgs); err != nil {
		return err
	}
	if c.dpop != nil {
		return check("DPoP proofs", string(c.dpop.Signer().Alg()), "dpop_signing_alg_values_supported", md.DPoPSigningAlgs)
	}
	return nil
}

func oneLines(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = oneLine(s)
	}
	return out
}
