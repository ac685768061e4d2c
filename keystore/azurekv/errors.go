package azurekv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/jwkctl/jwkctl/internal/lazyre"
	"github.com/jwkctl/jwkctl/keystore"
)

// op is one kind of request, with the permission it needs under Azure
// RBAC on a vault (and the least built-in role that has it), Managed HSM
// local RBAC, and a vault access policy.
type op struct{ vault, role, hsm, policy string }

const (
	cryptoUser    = "Key Vault Crypto User"
	cryptoOfficer = "Key Vault Crypto Officer"
)

var (
	opRead   = op{"Microsoft.KeyVault/vaults/keys/read", cryptoUser, "Microsoft.KeyVault/managedHsm/keys/read/action", "get"}
	opList   = op{"Microsoft.KeyVault/vaults/keys/read", cryptoUser, "Microsoft.KeyVault/managedHsm/keys/read/action", "list"}
	opSign   = op{"Microsoft.KeyVault/vaults/keys/sign/action", cryptoUser, "Microsoft.KeyVault/managedHsm/keys/sign/action", "sign"}
	opCreate = op{"Microsoft.KeyVault/vaults/keys/create/action", cryptoOfficer, "Microsoft.KeyVault/managedHsm/keys/create", "create"}
	opUpdate = op{"Microsoft.KeyVault/vaults/keys/update/action", cryptoUser, "Microsoft.KeyVault/managedHsm/keys/write/action", "update"}
	opDelete = op{"Microsoft.KeyVault/vaults/keys/delete", cryptoOfficer, "Microsoft.KeyVault/managedHsm/keys/delete", "delete"}
)

func defaultCredential() (azcore.TokenCredential, error) {
	return azidentity.NewDefaultAzureCredential(nil)
}

// chainCredential turns a credential's error (DefaultAzureCredential's
// names every source it tried, over many lines) into one line.
type chainCredential struct{ azcore.TokenCredential }

func (c chainCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := c.TokenCredential.GetToken(ctx, o)
	if err != nil {
		return tk, &credentialError{summarizeCredentialError(err.Error())}
	}
	return tk, nil
}

// credentialError is a failure to get a token, in one line.
type credentialError struct{ msg string }

func (e *credentialError) Error() string { return e.msg }

// summarizeCredentialError reads DefaultAzureCredential's message:
//
//	DefaultAzureCredential: failed to acquire a token.
//	Attempted credentials:
//		EnvironmentCredential: missing environment variable AZURE_TENANT_ID
//		ManagedIdentityCredential authentication failed.
//			GET http://169.254.169.254/…
//			RESPONSE 400: …
//
// and says "DefaultAzureCredential tried EnvironmentCredential (missing
// environment variable AZURE_TENANT_ID), ManagedIdentityCredential
// (authentication failed: RESPONSE 400: …)". A message of another shape
// keeps its first line.
func summarizeCredentialError(msg string) string {
	lines := strings.Split(strings.ReplaceAll(msg, "\r", ""), "\n")
	chain, _, _ := strings.Cut(lines[0], ":")
	var sources []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "\t\t") {
			continue
		}
		l = strings.TrimSpace(l)
		name, reason := l, ""
		if j := strings.IndexAny(l, ": "); j > 0 {
			name, reason = l[:j], strings.TrimSpace(strings.TrimPrefix(l[j:], ":"))
		}
		reason = strings.TrimSuffix(reason, ".")
		// A failed request says why on an indented RESPONSE line.
		for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], "\t\t"); j++ {
			if r := strings.TrimSpace(lines[j]); strings.HasPrefix(r, "RESPONSE ") {
				reason += ": " + r
				break
			}
		}
		if len(reason) > 120 {
			reason = reason[:117] + "…"
		}
		sources = append(sources, fmt.Sprintf("%s (%s)", name, reason))
	}
	if len(sources) == 0 {
		return oneLine(msg)
	}
	return fmt.Sprintf("%s tried %s; none gave a token (on Azure use a managed identity or AKS workload identity, elsewhere az login or AZURE_CLIENT_ID/AZURE_TENANT_ID with a secret or certificate; AZURE_TOKEN_CREDENTIALS narrows the chain)",
		chain, strings.Join(sources, ", "))
}

func oneLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(first)
}

// kvError is the body of a Key Vault error answer.
type kvError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

var actionRe = lazyre.New(`Action: '([^']+)'`)

// responseError finds the service's answer in an SDK error, and its body.
func responseError(err error) (*azcore.ResponseError, kvError, bool) {
	var re *azcore.ResponseError
	var body kvError
	if !errors.As(err, &re) {
		return nil, body, false
	}
	if re.RawResponse != nil {
		if b, rerr := runtime.Payload(re.RawResponse); rerr == nil {
			_ = json.Unmarshal(b, &body)
		}
	}
	return re, body, true
}

// disabled tells Key Vault's refusal to use a disabled key ("Operation
// sign is not allowed on a disabled key", inner code KeyDisabled) from a
// missing permission; both are 403.
func disabled(body kvError) bool {
	return (body.Error.InnerError != nil && body.Error.InnerError.Code == "KeyDisabled") ||
		strings.Contains(strings.ToLower(body.Error.Message), "disabled key")
}

// isDisabled reports whether err is Key Vault refusing a disabled key.
func isDisabled(err error) bool {
	re, body, ok := responseError(err)
	return ok && re.StatusCode == http.StatusForbidden && disabled(body)
}

// statusOf is the HTTP status of the service's answer in err, or 0.
func statusOf(err error) int {
	if re, _, ok := responseError(err); ok {
		return re.StatusCode
	}
	return 0
}

// mapErr turns an SDK error into one line, wrapping keystore sentinels,
// and names the permission a refused request needed.
func (v *vault) mapErr(err error, what, name, version string, o op) error {
	if err == nil {
		return nil
	}
	key := v.keyURI(name, version)
	if name == "" {
		key = v.n.KeyURI()
	}
	var ce *credentialError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %s %s: no Azure token: %s", keystore.ErrPermission, what, key, ce.msg)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("azurekv: %s %s: %w", what, key, err)
	}
	re, body, ok := responseError(err)
	if !ok {
		return fmt.Errorf("azurekv: %s %s: cannot reach the vault: %s", what, key, oneLine(err.Error()))
	}
	msg := oneLine(body.Error.Message)
	switch re.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: %s %s: the vault did not accept the token (wrong tenant, or a token for another resource): %s", keystore.ErrPermission, what, key, msg)
	case http.StatusForbidden:
		if disabled(body) {
			return fmt.Errorf("azurekv: %s %s: the key is disabled (jwkctl keys enable --key %s switches it back on)", what, key, key)
		}
		need := fmt.Sprintf("the caller needs %s (Azure RBAC, e.g. the built-in role %s), or %s permission on keys in the vault's access policy", o.vault, o.role, o.policy)
		if v.hsm {
			need = fmt.Sprintf("the caller needs %s (Managed HSM local RBAC; the built-in role Managed HSM Crypto User)", o.hsm)
		}
		detail := msg
		if m := actionRe().FindStringSubmatch(body.Error.Message); m != nil {
			detail = "denied action " + m[1]
		}
		return fmt.Errorf("%w: %s %s: %s (Key Vault: %s)", keystore.ErrPermission, what, key, need, detail)
	case http.StatusNotFound:
		if name == "" {
			return fmt.Errorf("%w: %s: %s", keystore.ErrNotFound, key, msg)
		}
		return fmt.Errorf("%w: %s does not exist in the vault (jwkctl keys list --key azurekv://%s shows what is there)", keystore.ErrNotFound, key, v.n.Host)
	case http.StatusConflict:
		return fmt.Errorf("%w: %s: a deleted key of that name is still recoverable, so the name cannot be reused until it is purged (az keyvault key recover brings it back; or choose another name): %s", keystore.ErrExists, key, msg)
	case http.StatusTooManyRequests:
		after := ""
		if re.RawResponse != nil {
			if ra := re.RawResponse.Header.Get("Retry-After"); ra != "" {
				after = ", and it asked to wait " + ra + " s more"
			}
		}
		return fmt.Errorf("azurekv: %s %s: Key Vault is throttling requests (429 Too Many Requests, still after %d retries%s); its limits count transactions per vault per 10 seconds: spread the load over more time or vaults, or try again later", what, key, maxRetries, after)
	}
	code := body.Error.Code
	if code == "" {
		code = re.ErrorCode
	}
	return fmt.Errorf("azurekv: %s %s: %d %s: %s", what, key, re.StatusCode, code, msg)
}

// maxRetries is how often the SDK's retry policy retries a throttled or
// failed request (its default), honouring Retry-After.
const maxRetries = 3
