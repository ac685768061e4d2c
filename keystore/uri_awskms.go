package keystore

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/jwkctl/jwkctl/internal/lazyre"
)

// AWSKMSName names an AWS KMS key the ways AWS itself does (and cosign's
// and smallstep's awskms: URIs): by key ID, key ARN, alias name or alias
// ARN. An alias given without a name ("alias/" or "alias/prefix") is only
// a prefix for listing.
type AWSKMSName struct {
	// Key is the key ID, key ARN, alias/NAME or alias ARN, as given.
	Key string
	// Region is the ?region= of the URI, or the region in an ARN. Empty
	// means the AWS SDK's default (AWS_REGION, the shared config profile).
	Region string
	// Profile is the ?profile= of the URI: a named profile of the shared
	// AWS config files. Empty means the default chain (AWS_PROFILE, …).
	Profile string

	regionFromARN bool
}

var (
	awsKeyIDRe    = lazyre.New(`^(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	awsARNRe      = lazyre.New(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:(key|alias)/(.+)$`)
	awsAliasRe    = lazyre.New(`^alias/[A-Za-z0-9/_-]*$`)
	awsRegionRe   = lazyre.New(`^[a-z]{2}(?:-[a-z]+)+-[0-9]+$`)
	awsProfileRe  = lazyre.New(`^[A-Za-z0-9._@+=,-]+$`)
	awsURIExample = "awskms:///alias/NAME?region=eu-north-1, awskms:///KEY-ID?region=…, awskms:///arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
)

func parseAWSKMS(rest string) (*URI, error) {
	body, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return nil, fmt.Errorf("%w: awskms URIs look like %s", ErrBadURI, awsURIExample)
	}
	if strings.Contains(body, "#") {
		return nil, fmt.Errorf("%w: awskms URI must not have a fragment", ErrBadURI)
	}
	host, path, _ := strings.Cut(body, "/")
	if host != "" {
		// cosign's awskms://HOST:PORT/… puts the endpoint in the name; here
		// a key's name does not change with the endpoint that serves it.
		return nil, fmt.Errorf("%w: awskms URI names host %q: write awskms:///KEY (three slashes) and give an endpoint with --kms-endpoint", ErrBadURI, MaskPINValue(host))
	}
	path, query, _ := strings.Cut(path, "?")
	key, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("%w: awskms URI: bad percent-encoding", ErrBadURI)
	}
	n := &AWSKMSName{Key: key}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("%w: awskms URI: bad query", ErrBadURI)
		}
		for name, vals := range q {
			// Only the name goes into a message: the value of a mistyped
			// parameter could be a secret someone put there.
			if len(vals) != 1 {
				return nil, fmt.Errorf("%w: awskms URI parameter %q given more than once", ErrBadURI, MaskPINValue(name))
			}
			switch name {
			case "region":
				n.Region = vals[0]
				if !awsRegionRe().MatchString(n.Region) {
					return nil, fmt.Errorf("%w: awskms URI: %q is not an AWS region (e.g. eu-north-1)", ErrBadURI, MaskPINValue(n.Region))
				}
			case "profile":
				n.Profile = vals[0]
				if !awsProfileRe().MatchString(n.Profile) {
					return nil, fmt.Errorf("%w: awskms URI: profile must be the name of a profile in the AWS config files", ErrBadURI)
				}
			default:
				return nil, fmt.Errorf("%w: unknown awskms URI parameter %q (use region and profile; credentials come from the AWS SDK's chain, never from the URI)", ErrBadURI, MaskPINValue(name))
			}
		}
	}
	switch {
	case key == "":
		return nil, fmt.Errorf("%w: awskms URI names no key: %s", ErrBadURI, awsURIExample)
	case strings.HasPrefix(key, "arn:"):
		m := awsARNRe().FindStringSubmatch(key)
		if m == nil || (m[2] == "key" && !awsKeyIDRe().MatchString(m[3])) || (m[2] == "alias" && !awsAliasRe().MatchString("alias/"+m[3])) {
			return nil, fmt.Errorf("%w: %q is not an AWS KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID or …:alias/NAME)", ErrBadURI, MaskPINValue(key))
		}
		if n.Region != "" && n.Region != m[1] {
			return nil, fmt.Errorf("%w: awskms URI: the ARN is in region %s but ?region=%s; leave region out of an ARN URI", ErrBadURI, m[1], n.Region)
		}
		n.Region, n.regionFromARN = m[1], true
	case strings.HasPrefix(key, "alias/"):
		if !awsAliasRe().MatchString(key) {
			return nil, fmt.Errorf("%w: %q is not an AWS KMS alias (alias/ then letters, digits, /, _ and -)", ErrBadURI, MaskPINValue(key))
		}
	case !awsKeyIDRe().MatchString(key):
		return nil, fmt.Errorf("%w: %q is not an AWS KMS key ID, ARN or alias/NAME: %s", ErrBadURI, MaskPINValue(key), awsURIExample)
	}
	return &URI{Scheme: SchemeAWSKMS, AWSKMS: n}, nil
}

// IsAlias reports whether the name is an alias (name or ARN).
func (n *AWSKMSName) IsAlias() bool {
	return strings.HasPrefix(n.Key, "alias/") || strings.Contains(n.Key, ":alias/")
}

// AliasName is alias/NAME for an alias (name or ARN), else "".
func (n *AWSKMSName) AliasName() string {
	if i := strings.Index(n.Key, "alias/"); i >= 0 && n.IsAlias() {
		return n.Key[i:]
	}
	return ""
}

// String is the URI: awskms:///KEY, with the region and profile as query
// parameters (an ARN carries its region itself).
func (n *AWSKMSName) String() string {
	s := "awskms:///" + n.Key
	q := url.Values{}
	if n.Region != "" && !n.regionFromARN {
		q.Set("region", n.Region)
	}
	if n.Profile != "" {
		q.Set("profile", n.Profile)
	}
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// WithKey returns a copy of the name for another key in the same region
// and profile (the key a rotation makes next to the current one).
func (n *AWSKMSName) WithKey(key string) (*URI, error) {
	q := url.Values{}
	if n.Region != "" && !strings.HasPrefix(key, "arn:") {
		q.Set("region", n.Region)
	}
	if n.Profile != "" {
		q.Set("profile", n.Profile)
	}
	s := "awskms:///" + key
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return Parse(s)
}
