package assertion

import (
	"errors"
	"fmt"
)

// HelseID's organisation-number vocabulary for the helseid_authorization
// assertion detail.
const (
	// DetailTypeHelseID is the "type" of the assertion detail that carries
	// organisation numbers.
	DetailTypeHelseID = "helseid_authorization"
	// OrgSystemSingleTenant names a child organisation (underenhet) of a
	// single-tenant client: the value is the bare child number.
	OrgSystemSingleTenant = "urn:oid:2.16.578.1.12.4.1.4.101"
	// OrgSystemMultiTenant names the organisation a multi-tenant client acts
	// for: the value is NO:ORGNR:<parent>[:<child>].
	OrgSystemMultiTenant = "urn:oid:1.0.6523"
	// OrgIdentifierType is the identifier type for both: ENH (Enhetsregisteret).
	OrgIdentifierType = "ENH"
)

// ErrOrgNumber is returned for an organisation number that is not nine digits.
var ErrOrgNumber = errors.New("assertion: organisation number must be 9 digits")

// OrgDetail is one helseid_authorization entry of the assertion_details
// claim. It marshals to
//
//	{"type":"helseid_authorization","practitioner_role":{"organization":
//	 {"identifier":{"system":…,"type":"ENH","value":…}}}}
type OrgDetail struct {
	Type             string           `json:"type"`
	PractitionerRole PractitionerRole `json:"practitioner_role"`
}

// PractitionerRole wraps the organisation of an OrgDetail.
type PractitionerRole struct {
	Organization Organization `json:"organization"`
}

// Organization wraps the identifier of an OrgDetail.
type Organization struct {
	Identifier OrgIdentifier `json:"identifier"`
}

// OrgIdentifier is the organisation number in HelseID's coding.
type OrgIdentifier struct {
	System string `json:"system"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

// OrgDetails builds the assertion_details claim HelseID reads organisation
// numbers from (inside the client assertion; authorization_details is only
// for request objects):
//
//   - no numbers: nil, the claim is left out;
//   - only childOrg (a single-tenant client naming its underenhet): system
//     OrgSystemSingleTenant, value the child number;
//   - parentOrg with an optional childOrg (a multi-tenant client): system
//     OrgSystemMultiTenant, value NO:ORGNR:<parent>:<child>, or
//     NO:ORGNR:<parent>: (with the trailing colon) without a child, as
//     NorskHelsenett's HelseID.Library writes it.
//
// Both numbers must be nine digits.
func OrgDetails(parentOrg, childOrg string) ([]any, error) {
	for _, n := range []struct{ name, v string }{{"parent", parentOrg}, {"child", childOrg}} {
		if n.v != "" && !isOrgNumber(n.v) {
			return nil, fmt.Errorf("%w: %s organisation %q", ErrOrgNumber, n.name, n.v)
		}
	}
	var id OrgIdentifier
	switch {
	case parentOrg == "" && childOrg == "":
		return nil, nil
	case parentOrg == "":
		id = OrgIdentifier{System: OrgSystemSingleTenant, Type: OrgIdentifierType, Value: childOrg}
	default:
		v := "NO:ORGNR:" + parentOrg + ":" + childOrg
		id = OrgIdentifier{System: OrgSystemMultiTenant, Type: OrgIdentifierType, Value: v}
	}
	return []any{OrgDetail{
		Type:             DetailTypeHelseID,
		PractitionerRole: PractitionerRole{Organization: Organization{Identifier: id}},
	}}, nil
}

func isOrgNumber(s string) bool {
	if len(s) != 9 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
