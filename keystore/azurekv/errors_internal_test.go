package azurekv

import (
	"strings"
	"testing"
)

// DefaultAzureCredential's message, as the SDK writes it when nothing on
// the machine gives a token (the IMDS probe answered by a proxy).
const dacMessage = "DefaultAzureCredential: failed to acquire a token.\nAttempted credentials:\n" +
	"\tEnvironmentCredential: missing environment variable AZURE_TENANT_ID\n" +
	"\tWorkloadIdentityCredential: no client ID specified. Check pod configuration or set ClientID in the options\n" +
	"\tManagedIdentityCredential authentication failed. \n" +
	"\t\tGET http://169.254.169.254/metadata/identity/oauth2/token\n" +
	"\t\t--------------------------------------------------------------------------------\n" +
	"\t\tRESPONSE 403: 403 Forbidden\n" +
	"\t\t--------------------------------------------------------------------------------\n" +
	"\t\tresolve_deny: denied destination\n" +
	"\t\t--------------------------------------------------------------------------------\n" +
	"\t\tTo troubleshoot, visit https://aka.ms/azsdk/go/identity/troubleshoot#managed-id"

func TestSummarizeCredentialError(t *testing.T) {
	got := summarizeCredentialError(dacMessage)
	for _, want := range []string{
		"DefaultAzureCredential tried ",
		"EnvironmentCredential (missing environment variable AZURE_TENANT_ID)",
		"WorkloadIdentityCredential (no client ID specified",
		"ManagedIdentityCredential (authentication failed: RESPONSE 403: 403 Forbidden)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\n") || strings.Contains(got, "-----") {
		t.Fatalf("summary is not one clean line: %q", got)
	}
	// Another shape keeps its first line.
	if got := summarizeCredentialError("ClientSecretCredential: invalid client secret\nmore"); got != "ClientSecretCredential: invalid client secret" {
		t.Fatalf("other shape: %q", got)
	}
}
