package assertion

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestOrgDetails(t *testing.T) {
	tests := []struct {
		name, parent, child string
		want                string
		err                 bool
	}{
		{name: "none", want: "null"},
		{name: "single-tenant child", child: "999977775", want: `[{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:2.16.578.1.12.4.1.4.101","type":"ENH","value":"999977775"}}}}]`},
		{name: "multi-tenant parent", parent: "994598759", want: `[{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}}]`},
		{name: "multi-tenant parent and child", parent: "994598759", child: "999977775", want: `[{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:999977775"}}}}]`},
		{name: "short", parent: "99459875", err: true},
		{name: "letters", child: "99459875x", err: true},
		{name: "spaces", parent: "994 598 759", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := OrgDetails(tt.parent, tt.child)
			if tt.err {
				if !errors.Is(err, ErrOrgNumber) {
					t.Fatalf("err = %v, want ErrOrgNumber", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(d)
			if string(b) != tt.want {
				t.Errorf("\n got %s\nwant %s", b, tt.want)
			}
		})
	}
}
