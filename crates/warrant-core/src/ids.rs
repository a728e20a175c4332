//! Identifiers and names, parsed once at the edge. Each is a newtype so that a tenant name
//! cannot be passed where an account id is expected.

use std::fmt;

use crate::time::Timestamp;

/// Why a name or identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must match {rule}")]
pub struct InvalidName {
    pub what: &'static str,
    pub rule: &'static str,
}

fn is_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

macro_rules! name_type {
    ($(#[$m:meta])* $t:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $t(String);

        impl $t {
            pub fn parse(s: &str) -> Result<Self, InvalidName> {
                if is_name(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidName { what: $what, rule: "[a-z0-9-]{1,63}" })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A tenant name: `[a-z0-9-]{1,63}`. `system` is reserved for the admin tenant.
    TenantName,
    "a tenant name"
);
name_type!(
    /// A service-account name, unique among the tenant's live accounts.
    AccountName,
    "an account name"
);
name_type!(
    /// A registered API's name, unique among the tenant's live APIs.
    ApiName,
    "an API name"
);
name_type!(
    /// A federation trust's name, unique among the tenant's live trusts.
    TrustName,
    "a trust name"
);
name_type!(
    /// A secret's name, unique among the account's live secrets (`initial`, `next`, …).
    SecretName,
    "a secret name"
);

impl TenantName {
    pub const SYSTEM: &'static str = "system";
    pub const DEFAULT: &'static str = "default";

    pub fn system() -> Self {
        Self(Self::SYSTEM.into())
    }

    pub fn is_system(&self) -> bool {
        self.0 == Self::SYSTEM
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `prefix` + a ULID: 48-bit millisecond time, 80 random bits, Crockford base32.
fn ulid(prefix: &str, now: Timestamp) -> Result<String, warrant_jose::JoseError> {
    let rand: [u8; 10] = warrant_jose::crypto::random_array()?;
    let mut value: u128 = (now.millis().max(0) as u128 & ((1u128 << 48) - 1)) << 80;
    for (i, b) in rand.iter().enumerate() {
        value |= (*b as u128) << (8 * (9 - i));
    }
    let mut s = String::with_capacity(prefix.len() + 26);
    s.push_str(prefix);
    for i in (0..26).rev() {
        let idx = ((value >> (5 * i)) & 0x1f) as usize;
        s.push(CROCKFORD[idx] as char);
    }
    Ok(s)
}

/// Exactly `prefix` + 26 Crockford base32 characters (upper case, as generated).
fn is_ulid(prefix: &str, s: &str) -> bool {
    let n = prefix.len();
    s.len() == n + 26
        && s.starts_with(prefix)
        && s.as_bytes()[n] <= b'7'
        && s.as_bytes()[n..].iter().all(|b| CROCKFORD.contains(b))
}

/// An id type — `$prefix` + a ULID, never reused — and the reference admins write for such a
/// record: its id or its name (names cannot hold `_`, so `$prefix…` is always an id).
macro_rules! ulid_id {
    (
        $(#[$m:meta])* $id:ident, $(#[$rm:meta])* $r:ident($name:ident),
        $prefix:literal, $what:literal
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $id(String);

        impl $id {
            pub fn generate(now: Timestamp) -> Result<Self, warrant_jose::JoseError> {
                ulid($prefix, now).map(Self)
            }

            #[doc = concat!("Accepts exactly `", $prefix, "` + 26 Crockford base32 characters (upper case, as generated).")]
            pub fn parse(s: &str) -> Result<Self, InvalidName> {
                if is_ulid($prefix, s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidName {
                        what: $what,
                        rule: concat!($prefix, " followed by a 26-character ULID"),
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        $(#[$rm])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $r {
            Id($id),
            Name($name),
        }

        impl $r {
            pub fn parse(s: &str) -> Result<Self, InvalidName> {
                if s.starts_with($prefix) {
                    $id::parse(s).map(Self::Id)
                } else {
                    $name::parse(s).map(Self::Name)
                }
            }
        }

        /// As the admin wrote it: the id or the name.
        impl fmt::Display for $r {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Id(id) => id.fmt(f),
                    Self::Name(n) => n.fmt(f),
                }
            }
        }
    };
}

ulid_id!(
    /// A service-account id: `sa_` + a ULID (48-bit millisecond time, 80 random bits, Crockford
    /// base32). It is the token's `sub` and `client_id` and is never reused.
    AccountId,
    /// A reference to an account as admins write it: its id or its name.
    AccountRef(AccountName),
    "sa_",
    "an account id"
);
ulid_id!(
    /// A registered API's id: `api_` + a ULID, never reused.
    ApiId,
    /// A reference to a registered API as admins write it: its id or its name.
    ApiRef(ApiName),
    "api_",
    "an API id"
);
ulid_id!(
    /// A federation trust's id: `trust_` + a ULID, never reused.
    TrustId,
    /// A reference to a trust as admins write it: its id or its name.
    TrustRef(TrustName),
    "trust_",
    "a trust id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(TenantName::parse("default").is_ok());
        assert!(TenantName::parse("a-1").is_ok());
        assert!(TenantName::parse("").is_err());
        assert!(TenantName::parse("Upper").is_err());
        assert!(TenantName::parse(&"a".repeat(64)).is_err());
        assert!(AccountName::parse("ci_deployer").is_err());
    }

    #[test]
    fn account_ids_are_ulids_and_sort_by_time() {
        let a = AccountId::generate(Timestamp::from_millis(1_000)).unwrap();
        let b = AccountId::generate(Timestamp::from_millis(2_000)).unwrap();
        assert!(a < b);
        assert_eq!(AccountId::parse(a.as_str()), Ok(a.clone()));
        assert!(AccountId::parse("sa_x").is_err());
        assert!(AccountId::parse("sa_8ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
        assert!(matches!(
            AccountRef::parse(a.as_str()),
            Ok(AccountRef::Id(_))
        ));
        assert!(matches!(AccountRef::parse("api"), Ok(AccountRef::Name(_))));
    }

    #[test]
    fn api_ids_are_prefixed_ulids() {
        let a = ApiId::generate(Timestamp::from_millis(1_000)).unwrap();
        assert!(a.as_str().starts_with("api_") && a.as_str().len() == 30);
        assert_eq!(ApiId::parse(a.as_str()), Ok(a.clone()));
        assert!(ApiId::parse("sa_01ARZ3NDEKTSV4RRFFQ69G5FAV").is_err());
        assert!(matches!(ApiRef::parse(a.as_str()), Ok(ApiRef::Id(_))));
        assert!(matches!(ApiRef::parse("deploy-api"), Ok(ApiRef::Name(_))));
    }

    #[test]
    fn trust_ids_are_prefixed_ulids() {
        let t = TrustId::generate(Timestamp::from_millis(1_000)).unwrap();
        assert!(t.as_str().starts_with("trust_") && t.as_str().len() == 32);
        assert_eq!(TrustId::parse(t.as_str()), Ok(t.clone()));
        assert!(matches!(TrustRef::parse(t.as_str()), Ok(TrustRef::Id(_))));
        assert!(matches!(
            TrustRef::parse("github-deploy"),
            Ok(TrustRef::Name(_))
        ));
    }
}
