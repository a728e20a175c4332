//! `--scenario client-auth`: what each client authentication method — and each token-exchange
//! grant — costs a token, set against `client_secret_basic` measured in the same run, on ONE real
//! `warrant serve` (SQLite, audit log on, as in production).
//!
//! Five rows, each at every connection count (16 and 64 by default), one after the other:
//!
//! - `secret`: `client_secret_basic`, the baseline (the account every other scenario uses).
//! - `pk-jwt`: `private_key_jwt` (RFC 7523) for an account registered with an inline JWKS of an
//!   ES256 key (`warrant sa create --jwks FILE`). Every request carries a fresh assertion:
//!   `iss` = `sub` = the client id, `aud` = the tenant's issuer (from discovery), a unique `jti`,
//!   `iat` = now, `exp` = now + 60 s, signed by this process with `warrant_jose::sign_compact`.
//! - `sec+dpop`: the secret account again, plus a fresh DPoP proof (RFC 9449) per request in the
//!   `DPoP` header: `warrant_jose::sign_with_embedded_jwk(key, "dpop+jwt", …)` over `jti`
//!   (unique), `htm` = POST, `htu` = the discovered token endpoint, `iat` = now.
//! - `federated`: RFC 8693 token exchange of an external JWT, no client authentication. A trust
//!   `bench-idp` (`warrant trust create --issuer https://idp.bench.example --jwks-file FILE
//!   --condition sub=bench-job --max-age 1h`, a STATIC JWKS of an ES256 key of this process's,
//!   not single-use) maps it to the account `bench-fed`. One external token (`iss`, `aud`, `sub`
//!   = `bench-job`, a `jti`, `iat` = now, `exp` = now + 1 h) is signed right before each row and
//!   sent on every request of it: the server verifies its signature with the trust's keys, reads
//!   the tenant's trusts from the store, evaluates the conditions, signs and audits.
//! - `delegated`: RFC 8693 delegation. `bench-owner` owns the registered API `orders`
//!   (`https://orders.bench`, scope `orders:read`) and is granted `orders:read` on
//!   `https://billing.bench`; `bench-user` is granted `orders:read` on `https://orders.bench`,
//!   its tokens living 1 h. Right before each row `bench-user` gets a token by
//!   client_credentials; every request of the row is `bench-owner` (Basic) exchanging that same
//!   token (`subject_token_type` access_token) for one to `https://billing.bench`: the server
//!   checks the secret, verifies the subject token (its own ES256 signature, revocation), reads
//!   the tenant's APIs from the store, intersects scopes, signs (with `act`) and audits.
//!
//! **Assertions and proofs are signed before each timed run, not in the load generator.** The
//! load generator shares the machine's cores with the server; an ES256 signature per request
//! (~13 µs of CPU, about a third of the server's whole CPU per token) would take CPU from the
//! server in the rows being compared and not in the baseline. So before each `pk-jwt` and
//! `sec+dpop` row a pool is signed on every core while the server is idle, sized from the
//! baseline's tokens/s at the same connection count (× 1.3, for warm-up + window + 1 s); the
//! load takes one item per request, each used once. Items stay valid for the row: assertions
//! expire 60 s after `iat` (the server allows 60 s of skew on top) and proofs are refused 60 s
//! after `iat`, while a row lasts the warm-up, the window and at most 2 s of grace after the
//! pool is signed. A pool older than [`MAX_POOL_AGE`] (a long `--duration`) or used up is not
//! trusted: the request is signed in line instead, and the report counts those (0 in a normal
//! run). The two exchange rows send one constant body ([`Payload::Fixed`]): nothing to sign.
//! Their subject tokens are made right before each row and are good for [`SUBJECT_LIFETIME_S`],
//! which the row must fit in (checked before anything starts).
//!
//! Both single-use checks cost the server one row in the store's `used_jtis` table per request
//! (an `INSERT … ON CONFLICT`, group-committed with the other requests waiting, besides the
//! audit record's group commit): that is the expected price of replay protection, and the
//! report says so. The exchange rows write no such row (the trust is not single-use, delegation
//! has no single-use check). Before the load a probe checks each row works: that a replayed
//! assertion or proof is refused (so the check being measured is really on), that the
//! federated token says `federated.sub` = `bench-job` (and `sub` = `bench-fed`), and that the
//! delegated one says `act.sub` = `bench-owner` (and `sub` = `bench-user`, `aud` = billing).
//!
//! First, in this process on one thread before the server starts, the raw cost of the crypto
//! involved: an ES256 signature (what a client pays per assertion or proof), an ES256
//! verification with a parsed key (the server's assertion check), and a whole
//! `verify_with_embedded_jwk` of a proof (parse, key from the header, verify).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{Empty, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio::time::Instant;
use warrant_core::grants::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT};
use warrant_core::{Clock as _, SystemClock};
use warrant_jose::{Algorithm, PublicKey, SigningKey};

use crate::load::{self, RequestSource};
use crate::process;
use crate::report::{self, Row, ratio};
use crate::warrant::{self, TempDir};
use crate::{Options, WARMUP};

/// Default connection counts.
pub const CONNECTIONS: &[usize] = &[16, 64];

/// Row names, in the order measured; [`SECRET`] is the baseline.
const SECRET: &str = "secret";
const ASSERTION: &str = "pk-jwt";
const DPOP: &str = "sec+dpop";
const FEDERATED: &str = "federated";
const DELEGATED: &str = "delegated";
const METHODS: [&str; 5] = [SECRET, ASSERTION, DPOP, FEDERATED, DELEGATED];

const TENANT: &str = "default";
const FORM: &[u8] = b"grant_type=client_credentials";
const ASSERTION_FORM: &str = "grant_type=client_credentials&client_assertion_type=\
                              urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
                              &client_assertion=";
const FORM_TYPE: &str = "application/x-www-form-urlencoded";
const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");
/// `exp` - `iat` of an assertion.
const ASSERTION_LIFETIME_S: i64 = 60;
/// The `federated` row's external issuer: its trust, the account it maps to, the audience and
/// the one `sub` the trust accepts.
const EXTERNAL_ISSUER: &str = "https://idp.bench.example";
const TRUST: &str = "bench-idp";
const FEDERATED_ACCOUNT: &str = "bench-fed";
const EXTERNAL_AUDIENCE: &str = "https://warrant.bench.example";
const EXTERNAL_SUBJECT: &str = "bench-job";
/// The `delegated` row: `bench-owner` owns the API `orders` ([`ORDERS`]) and exchanges
/// `bench-user`'s tokens for it into tokens for [`BILLING`], both grants being [`ORDERS_SCOPE`].
const OWNER: &str = "bench-owner";
const USER: &str = "bench-user";
const API: &str = "orders";
const ORDERS: &str = "https://orders.bench";
const BILLING: &str = "https://billing.bench";
const ORDERS_SCOPE: &str = "orders:read";
/// How long the exchange rows' subject tokens are good for (the external token's `exp` - `iat`
/// and the trust's max age; `bench-user`'s token lifetime, as the CLI takes it): each is made
/// right before its row, which must end within it.
const SUBJECT_LIFETIME_S: i64 = 3600;
const SUBJECT_LIFETIME: &str = "1h";
/// Pre-signed items older than this are not used (proofs are refused 60 s after `iat`).
const MAX_POOL_AGE: Duration = Duration::from_secs(45);
/// Pool size: the baseline's tokens/s × (warm-up + window + 1 s) × this.
const POOL_HEADROOM: f64 = 1.3;
const MIN_POOL: usize = 10_000;
/// The raw crypto loops: measured time per operation, after a short warm-up.
const CRYPTO_SECONDS: Duration = Duration::from_millis(1500);
const CRYPTO_WARMUP: Duration = Duration::from_millis(200);
const MESSAGE_LEN: usize = 300;

/// The whole scenario: raw crypto, then the three methods on one server.
pub async fn run(options: &Options) -> Result<()> {
    let connections = options.connections(CONNECTIONS);

    println!("\n-- raw ES256 cost (in-process, one thread, before the server starts)");
    let crypto = measure_crypto().await?;
    print_crypto(&crypto);

    println!(
        "\n-- client authentication methods: one real warrant serve (SQLite, audit log on), \
         one method after the other"
    );
    crate::print_plan(options, &connections);
    let tmp = TempDir::new()?;
    let cluster = warrant::start(&options.warrant, &tmp, 1, None).await?;
    let server = &cluster.servers[0];
    eprintln!(
        "client-auth: warrant serve listening on {} (pid {}, dir {})",
        server.addr,
        server.pid,
        tmp.0.display()
    );
    let mut rows = Vec::new();
    let mut pools = Vec::new();
    let measured = run_methods(
        options,
        &tmp,
        &cluster.credentials,
        server.addr,
        server.pid,
        &connections,
        &mut rows,
        &mut pools,
    )
    .await;
    cluster.stop().await;
    drop(tmp);
    measured?;

    println!();
    report::print_table(&rows);
    print_summary(&rows, &crypto, &connections);
    print_pools(&pools);
    Ok(())
}

/// Creates the accounts, the trust and the API, probes each row, then loads each row at every
/// connection count.
#[allow(clippy::too_many_arguments)]
async fn run_methods(
    options: &Options,
    tmp: &TempDir,
    credentials: &Path,
    addr: SocketAddr,
    pid: u32,
    connections: &[usize],
    rows: &mut Vec<Row>,
    pools: &mut Vec<PoolNote>,
) -> Result<()> {
    // Warm-up + window + a minute for the signing, the setup and the grace.
    let row_s = (WARMUP + options.duration).as_secs() + 60;
    if row_s > SUBJECT_LIFETIME_S.unsigned_abs() {
        bail!(
            "--duration too long for the {FEDERATED} and {DELEGATED} rows: their subject tokens \
             are good for {SUBJECT_LIFETIME}"
        );
    }
    let discovery = get_json(
        addr,
        &format!("/t/{TENANT}/.well-known/openid-configuration"),
    )
    .await?;
    let issuer = discovery["issuer"]
        .as_str()
        .context("discovery has no issuer")?
        .to_owned();
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .context("discovery has no token_endpoint")?
        .to_owned();
    let path = format!("/t/{TENANT}/token");
    if !token_endpoint.ends_with(&path) {
        bail!("discovery's token_endpoint {token_endpoint} does not end with {path}");
    }

    let secret = warrant::create_account(&options.warrant, credentials, addr, TENANT).await?;
    let basic = HeaderValue::from_str(&secret.basic_authorization()).context("basic header")?;
    let (client_key, _) = SigningKey::generate(Algorithm::Es256).context("client key")?;
    let client_id = create_jwks_account(options, tmp, credentials, addr, &client_key).await?;
    let (dpop_key, _) = SigningKey::generate(Algorithm::Es256).context("DPoP key")?;
    let (external_key, _) = SigningKey::generate(Algorithm::Es256).context("external key")?;
    let federated_id = create_trust(options, tmp, credentials, addr, &external_key).await?;
    let delegation = Delegation::create(options, credentials, addr).await?;
    let run_id = run_id()?;
    let assertions = Arc::new(Maker::Assertion {
        key: client_key,
        client_id,
        issuer: issuer.clone(),
    });
    let proofs = Arc::new(Maker::Proof {
        key: dpop_key,
        htu: token_endpoint,
    });
    let external = Maker::External { key: external_key };

    let base = Load {
        addr,
        host: HeaderValue::from_str(&addr.to_string()).context("host header")?,
        path,
        basic: None,
        payload: Payload::Plain,
    };
    probe(&Load {
        basic: Some(basic.clone()),
        ..base.clone_plain()
    })
    .await
    .context("probe: client_secret_basic")?;
    probe_with_replay(
        &base,
        None,
        &assertions,
        &format!("{run_id}-probe"),
        true,
        StatusCode::UNAUTHORIZED,
    )
    .await
    .context("probe: private_key_jwt")?;
    probe_with_replay(
        &base,
        Some(&basic),
        &proofs,
        &format!("{run_id}-probe"),
        false,
        StatusCode::BAD_REQUEST,
    )
    .await
    .context("probe: client_secret_basic + DPoP")?;
    let form = external.make(&format!("{run_id}-probe"), SystemClock.now().secs())?;
    probe_claims(
        &Load {
            payload: Payload::Fixed(form),
            ..base.clone_plain()
        },
        &[
            ("/federated/sub", EXTERNAL_SUBJECT),
            ("/federated/iss", EXTERNAL_ISSUER),
            ("/sub", &federated_id),
            ("/iss", &issuer),
        ],
    )
    .await
    .context("probe: federated token exchange")?;
    probe_claims(
        &Load {
            basic: Some(delegation.owner.clone()),
            payload: Payload::Fixed(delegation.form(&base).await?),
            ..base.clone_plain()
        },
        &[
            ("/act/sub", &delegation.owner_id),
            ("/sub", &delegation.user_id),
            ("/client_id", &delegation.owner_id),
            ("/aud", BILLING),
        ],
    )
    .await
    .context("probe: delegated token exchange")?;

    for method in METHODS {
        for &n in connections {
            let (basic, payload) = match method {
                ASSERTION => {
                    let pool = presign_row(options, &assertions, method, n, rows, &run_id).await?;
                    (None, Payload::Assertions(pool))
                }
                DPOP => {
                    let pool = presign_row(options, &proofs, method, n, rows, &run_id).await?;
                    (Some(&basic), Payload::Proofs(pool))
                }
                FEDERATED => {
                    let jti = format!("{run_id}-{}", rows.len());
                    let form = external.make(&jti, SystemClock.now().secs())?;
                    (None, Payload::Fixed(form))
                }
                DELEGATED => (
                    Some(&delegation.owner),
                    Payload::Fixed(delegation.form(&base).await?),
                ),
                _ => (Some(&basic), Payload::Plain),
            };
            let load = Arc::new(Load {
                basic: basic.cloned(),
                payload,
                ..base.clone_plain()
            });
            eprintln!("{method}: {n} connections ...");
            rows.push(crate::measure(method, &[pid], &load, n, None, options.duration).await?);
            if let Payload::Assertions(pool) | Payload::Proofs(pool) = &load.payload {
                pools.push(PoolNote {
                    method,
                    connections: n,
                    signed: pool.items.len(),
                    sign_s: pool.sign_s,
                    taken: pool.next.load(Ordering::Relaxed),
                    inline: pool.inline.load(Ordering::Relaxed),
                    oldest_s: pool.signed_at.elapsed().as_secs_f64(),
                });
            }
        }
    }
    Ok(())
}

/// The pool of `method`'s row at `n` connections, sized from the baseline's tokens/s at `n`.
async fn presign_row(
    options: &Options,
    maker: &Arc<Maker>,
    method: &str,
    n: usize,
    rows: &[Row],
    run_id: &str,
) -> Result<Pool> {
    let baseline = rows
        .iter()
        .find(|r| r.target == SECRET && r.connections == n)
        .map_or(0.0, |r| r.tokens_per_s);
    let window = WARMUP + options.duration + Duration::from_secs(1);
    let count = ((baseline * window.as_secs_f64() * POOL_HEADROOM) as usize).max(MIN_POOL);
    let prefix = format!("{run_id}-{}", rows.len());
    let pool = presign(maker.clone(), prefix, count).await?;
    eprintln!(
        "{method}: {n} connections: {} pre-signed in {:.1} s",
        pool.items.len(),
        pool.sign_s
    );
    Ok(pool)
}

/// `warrant sa create bench-jwt --jwks FILE`: an account that authenticates with
/// `private_key_jwt` only (the method is derived from the keys). Returns its client id.
async fn create_jwks_account(
    options: &Options,
    tmp: &TempDir,
    credentials: &Path,
    addr: SocketAddr,
    key: &SigningKey,
) -> Result<String> {
    let file = write_jwks(tmp, "client.jwks.json", key)?;
    let file = file.as_str();
    let v = warrant::cli_json(
        &options.warrant,
        credentials,
        addr,
        &[
            "sa",
            "create",
            "bench-jwt",
            "--tenant",
            TENANT,
            "--audience",
            "https://bench.internal",
            "--scope",
            "bench:read",
            "--jwks",
            file,
        ],
        "warrant sa create --jwks",
        "warrant sa create bench-jwt --jwks",
    )
    .await?;
    v["client_id"]
        .as_str()
        .map(str::to_owned)
        .context("`warrant sa create --jwks` output has no client_id")
}

/// Writes a JWK Set of `key`'s public key to `tmp/name`; returns the file's path.
fn write_jwks(tmp: &TempDir, name: &str, key: &SigningKey) -> Result<String> {
    let file = tmp.0.join(name);
    let jwks = serde_json::json!({ "keys": [key.public_jwk()] });
    std::fs::write(&file, serde_json::to_vec(&jwks)?)
        .with_context(|| format!("writing {}", file.display()))?;
    file.into_os_string()
        .into_string()
        .map_err(|_| anyhow::anyhow!("temporary path is not UTF-8"))
}

/// The `federated` row's setup: the account [`FEDERATED_ACCOUNT`], and the trust [`TRUST`]
/// mapping tokens of [`EXTERNAL_ISSUER`] for [`EXTERNAL_AUDIENCE`] with `sub` =
/// [`EXTERNAL_SUBJECT`] to it, `key` being its static JWKS. Not single-use: one token serves a
/// whole row. Returns the account's id.
async fn create_trust(
    options: &Options,
    tmp: &TempDir,
    credentials: &Path,
    addr: SocketAddr,
    key: &SigningKey,
) -> Result<String> {
    let account = warrant::create_named_account(
        &options.warrant,
        credentials,
        addr,
        TENANT,
        FEDERATED_ACCOUNT,
        Some(warrant::BENCH_GRANT),
    )
    .await?;
    let file = write_jwks(tmp, "external.jwks.json", key)?;
    let file = file.as_str();
    let condition = format!("sub={EXTERNAL_SUBJECT}");
    warrant::cli_json(
        &options.warrant,
        credentials,
        addr,
        &[
            "trust",
            "create",
            TRUST,
            "--tenant",
            TENANT,
            "--account",
            FEDERATED_ACCOUNT,
            "--audience",
            EXTERNAL_AUDIENCE,
            "--issuer",
            EXTERNAL_ISSUER,
            "--jwks-file",
            file,
            "--condition",
            &condition,
            "--max-age",
            SUBJECT_LIFETIME,
        ],
        "warrant trust create",
        "warrant trust create bench-idp --jwks-file",
    )
    .await?;
    Ok(account.client_id)
}

/// The `delegated` row's accounts: [`OWNER`] (Basic) owns the API [`API`] ([`ORDERS`],
/// [`ORDERS_SCOPE`]) and is granted that scope on [`BILLING`]; [`USER`] is granted it on
/// [`ORDERS`], its tokens living [`SUBJECT_LIFETIME`].
struct Delegation {
    owner: HeaderValue,
    owner_id: String,
    user: HeaderValue,
    user_id: String,
}

impl Delegation {
    async fn create(options: &Options, credentials: &Path, addr: SocketAddr) -> Result<Self> {
        let bin = &options.warrant;
        // An account granted ORDERS_SCOPE on `audience`.
        let account = |name, audience| {
            let grant = Some((audience, ORDERS_SCOPE));
            warrant::create_named_account(bin, credentials, addr, TENANT, name, grant)
        };
        let owner = account(OWNER, BILLING).await?;
        let api = [
            "api",
            "create",
            API,
            "--tenant",
            TENANT,
            "--audience",
            ORDERS,
            "--scope",
            ORDERS_SCOPE,
            "--owner",
            OWNER,
        ];
        let what = "warrant api create";
        warrant::cli_json(bin, credentials, addr, &api, what, what).await?;
        let user = account(USER, ORDERS).await?;
        let lifetimes = [
            "sa",
            "update",
            USER,
            "--tenant",
            TENANT,
            "--default-lifetime",
            SUBJECT_LIFETIME,
            "--max-lifetime",
            SUBJECT_LIFETIME,
        ];
        let what = "warrant sa update --default-lifetime";
        warrant::cli_json(bin, credentials, addr, &lifetimes, what, what).await?;
        let header = |a: &warrant::Account| {
            HeaderValue::from_str(&a.basic_authorization()).context("basic header")
        };
        Ok(Self {
            owner: header(&owner)?,
            owner_id: owner.client_id,
            user: header(&user)?,
            user_id: user.client_id,
        })
    }

    /// A fresh token of [`USER`] for [`ORDERS`] (client_credentials against `base`'s target),
    /// as the form that exchanges it for one to [`BILLING`].
    async fn form(&self, base: &Load) -> Result<Bytes> {
        let body = probe(&Load {
            basic: Some(self.user.clone()),
            ..base.clone_plain()
        })
        .await
        .with_context(|| format!("{USER}'s token for {ORDERS}"))?;
        Ok(exchange_form(
            TOKEN_TYPE_ACCESS_TOKEN,
            &access_token(&body)?,
            Some(BILLING),
        ))
    }
}

/// A token-exchange form body: `subject_token` of `token_type`, for `audience` if given.
fn exchange_form(token_type: &str, subject_token: &str, audience: Option<&str>) -> Bytes {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", GRANT_TOKEN_EXCHANGE)
        .append_pair("subject_token_type", token_type)
        .append_pair("subject_token", subject_token);
    if let Some(audience) = audience {
        form.append_pair("audience", audience);
    }
    Bytes::from(form.finish())
}

/// A random hex string naming this run in every `jti`.
fn run_id() -> Result<String> {
    let mut nonce = [0u8; 6];
    aws_lc_rs::rand::fill(&mut nonce)?;
    Ok(nonce.iter().map(|b| format!("{b:02x}")).collect())
}

// --- credentials -------------------------------------------------------------------------------

/// Signs one assertion (as a whole form body), one DPoP proof (a header value) or one external
/// token (as a whole token-exchange form body).
enum Maker {
    Assertion {
        key: SigningKey,
        client_id: String,
        issuer: String,
    },
    Proof {
        key: SigningKey,
        htu: String,
    },
    /// An external issuer's token, as the whole token-exchange form (see [`create_trust`]).
    External {
        key: SigningKey,
    },
}

impl Maker {
    fn make(&self, jti: &str, now: i64) -> Result<Bytes> {
        match self {
            Maker::Assertion {
                key,
                client_id,
                issuer,
            } => {
                let claims = serde_json::to_vec(&serde_json::json!({
                    "iss": client_id,
                    "sub": client_id,
                    "aud": issuer,
                    "jti": jti,
                    "iat": now,
                    "exp": now + ASSERTION_LIFETIME_S,
                }))?;
                let jwt = warrant_jose::sign_compact(key, "JWT", &claims)?;
                let mut form = String::with_capacity(ASSERTION_FORM.len() + jwt.len());
                form.push_str(ASSERTION_FORM);
                form.push_str(&jwt);
                Ok(Bytes::from(form))
            }
            Maker::Proof { key, htu } => {
                let claims = serde_json::to_vec(&serde_json::json!({
                    "jti": jti,
                    "htm": "POST",
                    "htu": htu,
                    "iat": now,
                }))?;
                let proof = warrant_jose::sign_with_embedded_jwk(key, "dpop+jwt", &claims)?;
                Ok(Bytes::from(proof))
            }
            Maker::External { key } => {
                let claims = serde_json::to_vec(&serde_json::json!({
                    "iss": EXTERNAL_ISSUER,
                    "aud": EXTERNAL_AUDIENCE,
                    "sub": EXTERNAL_SUBJECT,
                    "jti": jti,
                    "iat": now,
                    "exp": now + SUBJECT_LIFETIME_S,
                }))?;
                let jwt = warrant_jose::sign_compact(key, "JWT", &claims)?;
                Ok(exchange_form(TOKEN_TYPE_JWT, &jwt, None))
            }
        }
    }
}

/// Credentials signed before a run, each taken once; signed in line when used up or too old.
struct Pool {
    maker: Arc<Maker>,
    /// `jti` = `{prefix}-{index}`.
    prefix: String,
    items: Vec<Bytes>,
    next: AtomicUsize,
    inline: AtomicU64,
    /// When signing began (every item's `iat` is this second).
    signed_at: Instant,
    sign_s: f64,
}

impl Pool {
    fn take(&self) -> Result<Bytes> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(item) = self.items.get(i)
            && self.signed_at.elapsed() < MAX_POOL_AGE
        {
            return Ok(item.clone());
        }
        // Index i is never sent pre-signed once we get here, so its jti is still unused.
        self.inline.fetch_add(1, Ordering::Relaxed);
        self.maker
            .make(&format!("{}-{i}", self.prefix), SystemClock.now().secs())
    }
}

/// Signs `count` items on every core (the server is idle meanwhile), `iat` = now.
async fn presign(maker: Arc<Maker>, prefix: String, count: usize) -> Result<Pool> {
    let signed_at = Instant::now();
    let now = SystemClock.now().secs();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (maker, prefix, items) = tokio::task::spawn_blocking(move || {
        let chunk = count.div_ceil(threads);
        let parts: Vec<Result<Vec<Bytes>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (maker, prefix) = (&maker, &prefix);
                    s.spawn(move || {
                        (t * chunk..((t + 1) * chunk).min(count))
                            .map(|i| maker.make(&format!("{prefix}-{i}"), now))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a signing thread panicked")))
                })
                .collect()
        });
        let mut items = Vec::with_capacity(count);
        for part in parts {
            items.extend(part?);
        }
        Ok::<_, anyhow::Error>((maker, prefix, items))
    })
    .await
    .context("the signing task failed")??;
    Ok(Pool {
        maker,
        prefix,
        items,
        next: AtomicUsize::new(0),
        inline: AtomicU64::new(0),
        signed_at,
        sign_s: signed_at.elapsed().as_secs_f64(),
    })
}

// --- load --------------------------------------------------------------------------------------

/// What each request carries besides the fixed parts.
enum Payload {
    /// `grant_type=client_credentials` only (with Basic).
    Plain,
    /// The body is a pre-signed assertion form.
    Assertions(Pool),
    /// A pre-signed proof in the `DPoP` header (with Basic).
    Proofs(Pool),
    /// The same body on every request (the exchange rows' forms).
    Fixed(Bytes),
}

/// One method's requests against the server.
struct Load {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
    basic: Option<HeaderValue>,
    payload: Payload,
}

impl Load {
    /// The same target, no credentials.
    fn clone_plain(&self) -> Self {
        Self {
            addr: self.addr,
            host: self.host.clone(),
            path: self.path.clone(),
            basic: None,
            payload: Payload::Plain,
        }
    }

    fn request(&self) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(FORM_TYPE));
        if let Some(basic) = &self.basic {
            req = req.header(AUTHORIZATION, basic.clone());
        }
        let body = match &self.payload {
            Payload::Plain => Bytes::from_static(FORM),
            Payload::Assertions(pool) => pool.take()?,
            Payload::Fixed(body) => body.clone(),
            Payload::Proofs(pool) => {
                req = req.header(DPOP_HEADER, HeaderValue::from_maybe_shared(pool.take()?)?);
                Bytes::from_static(FORM)
            }
        };
        Ok(req.body(Full::new(body))?)
    }
}

impl RequestSource for Load {
    fn addr(&self, _conn: usize) -> SocketAddr {
        self.addr
    }

    fn request(&self, _conn: usize, _seq: u64) -> Result<Request<Full<Bytes>>> {
        Load::request(self)
    }

    fn accepts(&self, status: StatusCode, body: &[u8]) -> bool {
        status == StatusCode::OK && load::has_token(body)
    }
}

/// One request of `load` must get a token.
async fn probe(load: &Load) -> Result<Bytes> {
    let (status, body) = load::send(load.addr, load.request()?).await?;
    if status != StatusCode::OK || !load::has_token(&body) {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// One request of `load` must get a token whose claims hold each (JSON pointer, string) of
/// `expected`.
async fn probe_claims(load: &Load, expected: &[(&str, &str)]) -> Result<()> {
    let claims = token_claims(&probe(load).await?)?;
    for &(pointer, value) in expected {
        let found = claims.pointer(pointer);
        if found.and_then(serde_json::Value::as_str) != Some(value) {
            bail!("the token's {pointer} is {found:?}, not {value:?}: {claims}");
        }
    }
    Ok(())
}

/// The `access_token` of a token response.
fn access_token(body: &[u8]) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(body).context("a token response")?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the token response has no access_token")
}

/// The claims of a token response's access token (unverified: the probe checks what was
/// issued, not who issued it).
fn token_claims(body: &[u8]) -> Result<serde_json::Value> {
    let token = access_token(body)?;
    let payload = token
        .split('.')
        .nth(1)
        .context("the access token is not a compact JWS")?;
    let raw = URL_SAFE_NO_PAD
        .decode(payload)
        .context("the access token's payload is not base64url")?;
    serde_json::from_slice(&raw).context("the access token's payload is not JSON")
}

/// A fresh assertion (`as_body`) or proof must get a token, and the same one again must get
/// `replayed` (the single-use check is on). DPoP tokens must say `"token_type":"DPoP"`.
async fn probe_with_replay(
    base: &Load,
    basic: Option<&HeaderValue>,
    maker: &Arc<Maker>,
    jti: &str,
    as_body: bool,
    replayed: StatusCode,
) -> Result<()> {
    let item = maker.make(jti, SystemClock.now().secs())?;
    let once = || -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(base.path.as_str())
            .header(HOST, base.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(FORM_TYPE));
        if let Some(basic) = basic {
            req = req.header(AUTHORIZATION, basic.clone());
        }
        let body = if as_body {
            item.clone()
        } else {
            req = req.header(DPOP_HEADER, HeaderValue::from_maybe_shared(item.clone())?);
            Bytes::from_static(FORM)
        };
        Ok(req.body(Full::new(body))?)
    };
    let (status, body) = load::send(base.addr, once()?).await?;
    if status != StatusCode::OK || !load::has_token(&body) {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    if !as_body {
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        if v["token_type"].as_str() != Some("DPoP") {
            bail!("token_type is {}, not DPoP", v["token_type"]);
        }
    }
    let (status, body) = load::send(base.addr, once()?).await?;
    if status != replayed {
        bail!(
            "a replay was answered {status}, not {replayed}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// `GET path` on a fresh connection, as JSON.
async fn get_json(addr: SocketAddr, path: &str) -> Result<serde_json::Value> {
    let req = Request::builder()
        .uri(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let fut = async {
        let mut sender = load::connect(addr).await?;
        load::exchange(&mut sender, req).await
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .with_context(|| format!("GET {path} timed out"))??;
    if status != StatusCode::OK {
        bail!("GET {path}: {status}");
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
}

// --- raw crypto --------------------------------------------------------------------------------

/// One raw operation's figures (one thread).
struct CryptoRow {
    what: &'static str,
    ops: u64,
    wall_s: f64,
    cpu_s: f64,
}

impl CryptoRow {
    fn cpu_us(&self) -> f64 {
        if self.ops > 0 {
            self.cpu_s * 1e6 / self.ops as f64
        } else {
            f64::NAN
        }
    }
}

const SIGN: &str = "ES256 sign";
const VERIFY: &str = "ES256 verify";
const EMBEDDED: &str = "DPoP proof verify";

async fn measure_crypto() -> Result<Vec<CryptoRow>> {
    tokio::task::spawn_blocking(|| {
        let (key, _) = SigningKey::generate(Algorithm::Es256)?;
        let public = PublicKey::from_jwk(key.public_jwk())?;
        let message: Vec<u8> = (0..MESSAGE_LEN)
            .map(|i| b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i % 64])
            .collect();
        let sig = key.sign(&message)?;
        // A proof as the load sends it, from a key of its own (the header carries it).
        let proof = Maker::Proof {
            key: SigningKey::generate(Algorithm::Es256)?.0,
            htu: "http://127.0.0.1:1/t/default/token".into(),
        }
        .make("jti-for-timing", SystemClock.now().secs())?;
        let proof = std::str::from_utf8(&proof)?.to_owned();
        Ok(vec![
            time_loop(SIGN, || key.sign(&message).map(drop).map_err(Into::into))?,
            time_loop(VERIFY, || public.verify(&message, &sig).map_err(Into::into))?,
            time_loop(EMBEDDED, || {
                warrant_jose::verify_with_embedded_jwk(&proof)
                    .map(drop)
                    .map_err(Into::into)
            })?,
        ])
    })
    .await
    .context("the crypto thread failed")?
}

/// Runs `op` back to back for [`CRYPTO_SECONDS`] after [`CRYPTO_WARMUP`].
fn time_loop(what: &'static str, mut op: impl FnMut() -> Result<()>) -> Result<CryptoRow> {
    let mut run = |window: Duration| -> Result<(u64, f64)> {
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed() < window {
            for _ in 0..8 {
                std::hint::black_box(op()?);
            }
            n += 8;
        }
        Ok((n, start.elapsed().as_secs_f64()))
    };
    run(CRYPTO_WARMUP)?;
    let cpu_before = process::thread_cpu_seconds()?;
    let (ops, wall_s) = run(CRYPTO_SECONDS)?;
    let cpu_s = process::thread_cpu_seconds()? - cpu_before;
    Ok(CryptoRow {
        what,
        ops,
        wall_s,
        cpu_s,
    })
}

fn print_crypto(rows: &[CryptoRow]) {
    println!(
        "{:<18} {:>10} {:>8} {:>12} {:>11}",
        "operation", "ops", "wall s", "ops/s", "cpu us/op"
    );
    for r in rows {
        println!(
            "{:<18} {:>10} {:>8.2} {:>12.0} {:>11.1}",
            r.what,
            r.ops,
            r.wall_s,
            r.ops as f64 / r.wall_s,
            r.cpu_us()
        );
    }
    println!(
        "(sign: what a client pays per assertion or proof; verify: a parsed key over a \
         {MESSAGE_LEN}-byte message, the\nserver's assertion signature check; DPoP proof \
         verify: verify_with_embedded_jwk, i.e. decode, parse the header's jwk, verify)"
    );
}

// --- report ------------------------------------------------------------------------------------

/// How one row's pre-signed pool was used.
struct PoolNote {
    method: &'static str,
    connections: usize,
    signed: usize,
    sign_s: f64,
    taken: usize,
    inline: u64,
    /// From the start of signing (every item's `iat`) to the end of the row.
    oldest_s: f64,
}

/// Each row (method or grant) against the secret baseline at the same connection count, then
/// the server's CPU per token and what each row adds to it.
fn print_summary(rows: &[Row], crypto: &[CryptoRow], connections: &[usize]) {
    let find = |target: &str, n: usize| {
        rows.iter()
            .find(|r| r.target == target && r.connections == n)
    };
    println!(
        "\nPer method or grant vs client_secret_basic, same run (each row / {SECRET} at the same \
         connection count):"
    );
    println!(
        "  {:>5}  {:<9} {:>10} {:>9} {:>9} {:>9} {:>10} {:>14} {:>13}",
        "conns",
        "method",
        "tokens/s",
        "vs secret",
        "p50",
        "p99",
        "tok/cpu-s",
        "server us/tok",
        "+us vs secret"
    );
    for &n in connections {
        let Some(base) = find(SECRET, n) else {
            continue;
        };
        let base_us = base.cpu_s_per_1k() * 1000.0;
        for method in METHODS {
            let Some(r) = find(method, n) else { continue };
            let us = r.cpu_s_per_1k() * 1000.0;
            println!(
                "  {n:>5}  {method:<9} {:>10.0} {:>8.2}x {:>8.2}x {:>8.2}x {:>9.2}x {:>14.1} {:>13.1}",
                r.tokens_per_s,
                ratio(r.tokens_per_s, base.tokens_per_s),
                ratio(r.p50_ms, base.p50_ms),
                ratio(r.p99_ms, base.p99_ms),
                ratio(r.tokens_per_cpu_s(), base.tokens_per_cpu_s()),
                us,
                us - base_us,
            );
        }
    }
    let cpu = |what: &str| {
        crypto
            .iter()
            .find(|c| c.what == what)
            .map_or(f64::NAN, CryptoRow::cpu_us)
    };
    println!(
        "(server us/tok = server CPU per token; raw: ES256 verify {:.1} us, DPoP proof verify \
         {:.1} us on an idle core)\n\
         {ASSERTION} and {DPOP} write one row to the store's used_jtis table per request (the \
         single-use check on the\nassertion's or proof's jti: one INSERT, group-committed with \
         the other requests waiting, besides the audit\nrecord's group commit). That write \
         is the expected cost of replay protection.\n\
         {FEDERATED}: token exchange of one external ES256 JWT (static JWKS, no client auth): \
         signature verified with the\ntrust's keys (parsed once), the tenant's trusts from memory, \
         conditions evaluated. {DELEGATED}: {OWNER} (secret)\nexchanging one token of \
         {USER}'s: its signature and revocation checked, the tenant's APIs from memory,\n`act` \
         added. Neither writes a used_jtis row; both sign one token and audit \
         it, like every row.",
        cpu(VERIFY),
        cpu(EMBEDDED),
    );
}

fn print_pools(pools: &[PoolNote]) {
    if pools.is_empty() {
        return;
    }
    println!(
        "\nPre-signed credentials (signed on every core before each row, while the server was \
         idle; one per request, never reused):"
    );
    println!(
        "  {:>5}  {:<9} {:>9} {:>8} {:>9} {:>14} {:>16}",
        "conns", "method", "signed", "sign s", "used", "signed inline", "oldest used, s"
    );
    for p in pools {
        println!(
            "  {:>5}  {:<9} {:>9} {:>8.1} {:>9} {:>14} {:>16.1}",
            p.connections, p.method, p.signed, p.sign_s, p.taken, p.inline, p.oldest_s
        );
    }
    println!(
        "(oldest used: from the items' iat to the end of the row; assertions expire 60 s after \
         iat, proofs are refused 60 s after)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_forms_are_encoded() {
        let form = exchange_form(TOKEN_TYPE_ACCESS_TOKEN, "a.b.c", Some(BILLING));
        assert_eq!(
            &form[..],
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
              &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
              &subject_token=a.b.c&audience=https%3A%2F%2Fbilling.bench"
        );
    }

    #[test]
    fn external_token_verifies_and_reads_back() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let public = PublicKey::from_jwk(key.public_jwk()).unwrap();
        let form = Maker::External { key }.make("jti-1", 1_000).unwrap();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&form).into_owned().collect();
        let jwt = &pairs.iter().find(|(k, _)| k == "subject_token").unwrap().1;
        assert!(pairs.contains(&("subject_token_type".into(), TOKEN_TYPE_JWT.into())));
        warrant_jose::verify_compact_any_key(jwt, &[public]).unwrap();
        let body = serde_json::to_vec(&serde_json::json!({ "access_token": jwt })).unwrap();
        let claims = token_claims(&body).unwrap();
        assert_eq!(claims["sub"], EXTERNAL_SUBJECT);
        assert_eq!(claims["iss"], EXTERNAL_ISSUER);
        assert_eq!(claims["exp"], 1_000 + SUBJECT_LIFETIME_S);
    }
}
