//! RFC 8705 §2: a client certificate as the server presents it to the core (already parsed at
//! the edge: the core never reads DER), and the rules an account registers for it.

/// Facts about the client certificate of a request: from the TLS handshake, or from a
/// `Client-Cert` header (RFC 9440) sent by a trusted proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// `x5t#S256`: unpadded base64url SHA-256 of the leaf certificate's DER (RFC 8705 §3.1).
    pub x5t_s256: String,
    /// Whether the chain verified to the server's configured client CA (`tls.client_ca`), the
    /// leaf valid now and usable for client authentication. `false` for a self-signed or
    /// unknown-issuer certificate (which `self_signed_tls_client_auth` may still accept).
    pub chain_verified: bool,
    /// The leaf's subject as an RFC 4514 string (`CN=api,O=Example`).
    pub subject_dn: String,
    /// `dNSName` subject alternative names.
    pub dns_sans: Vec<String>,
    /// `uniformResourceIdentifier` subject alternative names (SPIFFE IDs among them).
    pub uri_sans: Vec<String>,
}

/// `tls_client_auth` (RFC 8705 §2.1.2): exactly one of these must match a certificate that
/// chains to the configured client CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateMatch {
    /// `tls_client_auth_subject_dn`, compared as RFC 4514 strings.
    SubjectDn(String),
    /// `tls_client_auth_san_dns`, compared ASCII case-insensitively.
    SanDns(String),
    /// `tls_client_auth_san_uri`, compared exactly (e.g. `spiffe://example.org/ns/prod/sa/api`).
    SanUri(String),
}

impl CertificateMatch {
    /// Whether `cert` satisfies this rule (the chain is checked separately).
    pub fn matches(&self, cert: &PresentedCertificate) -> bool {
        match self {
            CertificateMatch::SubjectDn(dn) => &cert.subject_dn == dn,
            CertificateMatch::SanDns(name) => {
                cert.dns_sans.iter().any(|d| d.eq_ignore_ascii_case(name))
            }
            CertificateMatch::SanUri(uri) => cert.uri_sans.iter().any(|u| u == uri),
        }
    }
}

impl CertificateMatch {
    /// The rule as a (kind, value) pair: `subject_dn`, `san_dns` or `san_uri` (RFC 8705 §2.1.2
    /// metadata names without the `tls_client_auth_` prefix).
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            CertificateMatch::SubjectDn(v) => ("subject_dn", v),
            CertificateMatch::SanDns(v) => ("san_dns", v),
            CertificateMatch::SanUri(v) => ("san_uri", v),
        }
    }

    /// The inverse of [`Self::parts`]; `None` for an unknown kind or an empty value.
    pub fn from_parts(kind: &str, value: String) -> Option<Self> {
        if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
            return None;
        }
        match kind {
            "subject_dn" => Some(CertificateMatch::SubjectDn(value)),
            "san_dns" => Some(CertificateMatch::SanDns(value)),
            "san_uri" => Some(CertificateMatch::SanUri(value)),
            _ => None,
        }
    }
}
