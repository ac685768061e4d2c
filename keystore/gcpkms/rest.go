package gcpkms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file is the Cloud KMS REST API v1 (cloudkms.googleapis.com/v1), the
// few resources and methods jwkctl uses, in the proto3 JSON mapping
// Google's REST surface speaks: lowerCamelCase field names, enums by
// name, bytes in standard base64, int64 (and google.protobuf.Int64Value)
// as decimal strings, absent fields for default values.

// maxBody caps how much of an answer is read: Cloud KMS's largest, a page
// of crypto keys, is far below it.
const maxBody = 4 << 20

// callTimeout bounds one call made without a deadline of its own (the
// Cloud KMS client libraries' default per-call timeout).
const callTimeout = 60 * time.Second

// int64JSON is a proto3 JSON int64: written as a decimal string, read
// from a string or a number.
type int64JSON int64

func (v int64JSON) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatInt(int64(v), 10))
}

func (v *int64JSON) UnmarshalJSON(b []byte) error {
	s := string(b)
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an int64: %.40s", b)
	}
	*v = int64JSON(n)
	return nil
}

func crcPtr(b []byte) *int64JSON { c := int64JSON(crc32c(b)); return &c }

type cryptoKeyVersionTemplate struct {
	Algorithm       string `json:"algorithm,omitempty"`
	ProtectionLevel string `json:"protectionLevel,omitempty"`
}

type cryptoKey struct {
	Name            string                    `json:"name,omitempty"`
	Purpose         string                    `json:"purpose,omitempty"`
	Primary         *cryptoKeyVersion         `json:"primary,omitempty"`
	VersionTemplate *cryptoKeyVersionTemplate `json:"versionTemplate,omitempty"`
}

type cryptoKeyVersion struct {
	Name            string `json:"name,omitempty"`
	State           string `json:"state,omitempty"`
	Algorithm       string `json:"algorithm,omitempty"`
	ProtectionLevel string `json:"protectionLevel,omitempty"`
}

type publicKey struct {
	Name            string     `json:"name"`
	Pem             string     `json:"pem"`
	PemCrc32c       *int64JSON `json:"pemCrc32c"`
	Algorithm       string     `json:"algorithm"`
	ProtectionLevel string     `json:"protectionLevel"`
}

type digestJSON struct {
	Sha256 []byte `json:"sha256,omitempty"`
	Sha384 []byte `json:"sha384,omitempty"`
	Sha512 []byte `json:"sha512,omitempty"`
}

type asymmetricSignRequest struct {
	Digest       *digestJSON `json:"digest,omitempty"`
	DigestCrc32c *int64JSON  `json:"digestCrc32c,omitempty"`
}

type asymmetricSignResponse struct {
	Name                 string     `json:"name"`
	Signature            []byte     `json:"signature"`
	SignatureCrc32c      *int64JSON `json:"signatureCrc32c"`
	VerifiedDigestCrc32c bool       `json:"verifiedDigestCrc32c"`
	VerifiedDataCrc32c   bool       `json:"verifiedDataCrc32c"`
	ProtectionLevel      string     `json:"protectionLevel"`
}

type listCryptoKeysResponse struct {
	CryptoKeys    []cryptoKey `json:"cryptoKeys"`
	NextPageToken string      `json:"nextPageToken"`
}

type listCryptoKeyVersionsResponse struct {
	CryptoKeyVersions []cryptoKeyVersion `json:"cryptoKeyVersions"`
	NextPageToken     string             `json:"nextPageToken"`
}

// APIError is an error answer of Cloud KMS: Google's JSON error body
// {"error": {"code": 404, "message": "…", "status": "NOT_FOUND"}}, or, when
// the body is not that, the HTTP status alone.
type APIError struct {
	HTTPStatus int    // 404
	Status     string // the google.rpc.Code name: "NOT_FOUND"
	Message    string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("Cloud KMS answered HTTP %d (%s)", e.HTTPStatus, e.Status)
	}
	return fmt.Sprintf("Cloud KMS answered HTTP %d (%s): %s", e.HTTPStatus, e.Status, e.Message)
}

// statusOf is the google.rpc.Code name of err: the status of a KMS answer,
// UNAVAILABLE for a request that got no answer (as gRPC says of a refused
// connection), "" for a context error or no error.
func statusOf(err error) string {
	var ae *APIError
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ""
	case errors.As(err, &ae):
		return ae.Status
	}
	var ce *credentialsError
	if errors.As(err, &ce) && !ce.unavailable {
		return "UNAUTHENTICATED"
	}
	return "UNAVAILABLE"
}

// statusForHTTP is the google.rpc.Code Google's API gateway maps an HTTP
// status from, for an error body without one.
func statusForHTTP(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ALREADY_EXISTS"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "UNKNOWN"
}

// codeName is a google.rpc.Code name as gRPC prints it: "Unavailable",
// "PermissionDenied".
func codeName(status string) string {
	var b strings.Builder
	for w := range strings.SplitSeq(strings.ToLower(status), "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// credentialsError is a failure to get an access token for a request; it
// never holds a token. unavailable: the token endpoint or metadata server
// gave no answer (retried like an unavailable KMS), rather than refusing.
type credentialsError struct {
	msg         string
	unavailable bool
}

func (e *credentialsError) Error() string { return e.msg }

// restClient calls one Cloud KMS endpoint.
type restClient struct {
	hc   *http.Client
	base string // "https://cloudkms.googleapis.com", no trailing slash
}

// resourceURL is base/v1/NAME with each segment of the resource name
// escaped, then suffix (":asymmetricSign", "/publicKey").
func (c *restClient) resourceURL(name, suffix string, query url.Values) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := c.base + "/v1/" + strings.Join(segs, "/") + suffix
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// do sends one request and decodes the answer into out.
func (c *restClient) do(ctx context.Context, method, u string, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "jwkctl")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// No answer: what went wrong (the URL is only the name again).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return tokenSafe(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading the answer of Cloud KMS: %w", err)
	}
	if len(b) > maxBody {
		return fmt.Errorf("the answer of Cloud KMS is longer than %d bytes", maxBody)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer of Cloud KMS is not the expected JSON: %v", err)
	}
	return nil
}

func apiError(code int, body []byte) *APIError {
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	ae := &APIError{HTTPStatus: code}
	if json.Unmarshal(body, &e) == nil {
		ae.Status, ae.Message = e.Error.Status, oneLine(e.Error.Message, 500)
	}
	if ae.Status == "" {
		ae.Status = statusForHTTP(code)
	}
	return ae
}

// oneLine keeps an error message on one line and at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func (c *restClient) getPublicKey(ctx context.Context, name string) (*publicKey, error) {
	var out publicKey
	return &out, c.do(ctx, http.MethodGet, c.resourceURL(name, "/publicKey", nil), nil, &out)
}

func (c *restClient) asymmetricSign(ctx context.Context, name string, req *asymmetricSignRequest) (*asymmetricSignResponse, error) {
	var out asymmetricSignResponse
	return &out, c.do(ctx, http.MethodPost, c.resourceURL(name, ":asymmetricSign", nil), req, &out)
}

func (c *restClient) getCryptoKey(ctx context.Context, name string) (*cryptoKey, error) {
	var out cryptoKey
	return &out, c.do(ctx, http.MethodGet, c.resourceURL(name, "", nil), nil, &out)
}

func (c *restClient) createCryptoKey(ctx context.Context, parent, id string, key *cryptoKey) (*cryptoKey, error) {
	var out cryptoKey
	return &out, c.do(ctx, http.MethodPost, c.resourceURL(parent, "/cryptoKeys", url.Values{"cryptoKeyId": {id}}), key, &out)
}

func (c *restClient) createCryptoKeyVersion(ctx context.Context, parent string) (*cryptoKeyVersion, error) {
	var out cryptoKeyVersion
	return &out, c.do(ctx, http.MethodPost, c.resourceURL(parent, "/cryptoKeyVersions", nil), &cryptoKeyVersion{}, &out)
}

func (c *restClient) getCryptoKeyVersion(ctx context.Context, name string) (*cryptoKeyVersion, error) {
	var out cryptoKeyVersion
	return &out, c.do(ctx, http.MethodGet, c.resourceURL(name, "", nil), nil, &out)
}

func (c *restClient) destroyCryptoKeyVersion(ctx context.Context, name string) (*cryptoKeyVersion, error) {
	var out cryptoKeyVersion
	return &out, c.do(ctx, http.MethodPost, c.resourceURL(name, ":destroy", nil), struct{}{}, &out)
}

// setState PATCHes the version's state (updateMask=state).
func (c *restClient) setState(ctx context.Context, name, state string) (*cryptoKeyVersion, error) {
	var out cryptoKeyVersion
	return &out, c.do(ctx, http.MethodPatch, c.resourceURL(name, "", url.Values{"updateMask": {"state"}}), &cryptoKeyVersion{State: state}, &out)
}

// maxPages bounds a listing, against a server that never ends one.
const maxPages = 1000

func (c *restClient) listCryptoKeys(ctx context.Context, parent string) ([]cryptoKey, error) {
	return listAll(ctx, c, parent+"/cryptoKeys", "crypto keys", func(p *listCryptoKeysResponse) ([]cryptoKey, string) {
		return p.CryptoKeys, p.NextPageToken
	})
}

func (c *restClient) listCryptoKeyVersions(ctx context.Context, parent string) ([]cryptoKeyVersion, error) {
	return listAll(ctx, c, parent+"/cryptoKeyVersions", "key versions", func(p *listCryptoKeyVersionsResponse) ([]cryptoKeyVersion, string) {
		return p.CryptoKeyVersions, p.NextPageToken
	})
}

// listAll follows a collection's pages (pageToken, nextPageToken) to the
// end; page picks a page's items and its next token.
func listAll[Page, Item any](ctx context.Context, c *restClient, collection, what string, page func(*Page) ([]Item, string)) ([]Item, error) {
	var all []Item
	token := ""
	for range maxPages {
		q := url.Values{}
		if token != "" {
			q.Set("pageToken", token)
		}
		var p Page
		if err := c.do(ctx, http.MethodGet, c.resourceURL(collection, "", q), nil, &p); err != nil {
			return nil, err
		}
		items, next := page(&p)
		all = append(all, items...)
		if token = next; token == "" {
			return all, nil
		}
	}
	return nil, fmt.Errorf("more than %d pages of %s", maxPages, what)
}
