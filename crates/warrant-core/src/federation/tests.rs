//! Evaluation tests: the token envelope, every mismatch class, `explain`, and the templates
//! against claim sets shaped like the tokens GitHub, GitLab and Kubernetes issue.

use serde_json::{Map, Value, json};

use super::templates::{self, GithubActions, GitlabCi};
use super::*;

const NOW: i64 = 1_750_000_000;
const AUDIENCE: &str = "https://warrant.example/t/acme";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn with(mut claims: Map<String, Value>, name: &str, v: Value) -> Map<String, Value> {
    claims.insert(name.into(), v);
    claims
}

fn without(mut claims: Map<String, Value>, name: &str) -> Map<String, Value> {
    claims.remove(name);
    claims
}

fn complete(mut p: TrustPolicy) -> TrustPolicy {
    p.audience = AUDIENCE.into();
    p.account = "deployer".into();
    assert_eq!(p.validate(), Ok(()));
    p
}

/// A GitHub Actions OIDC token's claims (docs.github.com, "About security hardening with
/// OpenID Connect"), issued 60 s before `NOW`.
fn github() -> Map<String, Value> {
    obj(json!({
        "jti": "6f4a3b1e-9c2d-4e5f-8a7b-0c1d2e3f4a5b",
        "sub": "repo:acme/api:environment:production",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": "d6e5c4b3a2910f8e7d6c5b4a39281706f5e4d3c2",
        "repository": "acme/api",
        "repository_owner": "acme",
        "repository_owner_id": "4242",
        "repository_id": "987654",
        "repository_visibility": "private",
        "actor": "octocat",
        "actor_id": "12",
        "run_id": "9876543210",
        "run_number": "42",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "workflow": "deploy",
        "workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push",
        "ref_type": "branch",
        "head_ref": "",
        "base_ref": "",
        "environment": "production",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": NOW - 65,
        "iat": NOW - 60,
        "exp": NOW + 240,
    }))
}

/// A GitLab CI ID token's claims (docs.gitlab.com, "OpenID Connect (OIDC) Authentication
/// Using ID Tokens").
fn gitlab() -> Map<String, Value> {
    obj(json!({
        "namespace_id": "72",
        "namespace_path": "acme",
        "project_id": "20",
        "project_path": "acme/api",
        "user_id": "1",
        "user_login": "release-bot",
        "pipeline_id": "574",
        "pipeline_source": "push",
        "job_id": "302",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "environment": "production",
        "environment_protected": "true",
        "runner_id": 1,
        "runner_environment": "gitlab-hosted",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "project_visibility": "private",
        "ci_config_ref_uri": "gitlab.com/acme/api//.gitlab-ci.yml@refs/heads/main",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
        "iss": "https://gitlab.com",
        "iat": NOW - 300,
        "nbf": NOW - 305,
        "exp": NOW + 3300,
        "sub": "project_path:acme/api:ref_type:branch:ref:main",
        "aud": AUDIENCE,
    }))
}

/// A Kubernetes projected service-account token's claims (kubernetes.io, "Managing Service
/// Accounts": bound tokens).
fn kubernetes() -> Map<String, Value> {
    obj(json!({
        "aud": [AUDIENCE, "https://other.example"],
        "exp": NOW + 3000,
        "iat": NOW - 600,
        "nbf": NOW - 600,
        "iss": "https://oidc.cluster.example",
        "jti": "ea28ed49-2e11-4280-9ec5-bc3d1d84661a",
        "kubernetes.io": {
            "namespace": "ci",
            "node": {"name": "node-1", "uid": "58456cb0-dd00-45ed-b797-5578fdceaced"},
            "pod": {"name": "deployer-7d9f8b6c5-x2x4z", "uid": "a8b2f4d4-1d6c-4b0e-9a52-0f1b2c3d4e5f"},
            "serviceaccount": {"name": "deployer", "uid": "e8e1c0d4-3c4d-4b5e-8f9a-0b1c2d3e4f5a"},
            "warnafter": NOW + 2400
        },
        "sub": "system:serviceaccount:ci:deployer",
    }))
}

fn gh_policy() -> TrustPolicy {
    complete(
        templates::github_actions(&GithubActions {
            repository: "acme/api".into(),
            repository_owner_id: Some("4242".into()),
            git_ref: Some("refs/heads/main".into()),
            environment: Some("production".into()),
            job_workflow_ref: Some("acme/api/.github/workflows/*.yml@refs/heads/main".into()),
        })
        .unwrap(),
    )
}

fn class(r: Result<Federated, Mismatch>) -> MismatchClass {
    match r {
        Ok(f) => panic!("matched: {f:?}"),
        Err(m) => m.class,
    }
}

#[test]
fn github_actions_token_matches_and_copies() {
    let f = evaluate(&gh_policy(), &github(), NOW).unwrap();
    assert_eq!(f.subject, "repo:acme/api:environment:production");
    assert_eq!(f.jti, None);
    assert_eq!(f.expires_at, NOW + 240);
    assert!(f.accepted_until <= f.expires_at);
    // A long-lived token is accepted only while it is young enough: the replay record's life.
    let mut long = github();
    long["exp"] = json!(NOW + 86_400);
    let f = evaluate(&gh_policy(), &long, NOW).unwrap();
    let iat = long["iat"].as_i64().unwrap();
    let max_age = i64::try_from(gh_policy().max_age_seconds).unwrap();
    assert_eq!(f.accepted_until, iat + max_age);
    assert_eq!(
        Value::Object(f.copied),
        json!({
            "repository": "acme/api",
            "ref": "refs/heads/main",
            "sha": "d6e5c4b3a2910f8e7d6c5b4a39281706f5e4d3c2",
            "workflow": "deploy",
            "run_id": "9876543210",
            "actor": "octocat",
        })
    );
}

#[test]
fn github_actions_near_misses_fail_as_conditions() {
    let p = gh_policy();
    let near_misses = [
        with(github(), "repository", json!("acme/other")),
        with(github(), "repository", json!("acme-evil/api")),
        with(github(), "repository_owner_id", json!("4243")),
        // The owner id is a string in GitHub's tokens; the number does not equal it.
        with(github(), "repository_owner_id", json!(4242)),
        with(github(), "ref", json!("refs/heads/main-evil")),
        with(github(), "ref", json!("refs/pull/1/merge")),
        with(github(), "environment", json!("staging")),
        without(github(), "environment"),
        with(
            github(),
            "job_workflow_ref",
            json!("acme-evil/api/.github/workflows/deploy.yml@refs/heads/main"),
        ),
        with(
            github(),
            "job_workflow_ref",
            json!("acme/api/.github/workflows/sub/deploy.yml@refs/heads/main"),
        ),
    ];
    for claims in near_misses {
        let m = evaluate(&p, &claims, NOW).unwrap_err();
        assert_eq!(m.class, MismatchClass::Condition, "{}", m.detail);
    }
    let m = evaluate(
        &p,
        &with(github(), "repository", json!("acme-evil/api")),
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        m.detail,
        r#"repository: expected equals "acme/api", got "acme-evil/api""#
    );
    // The client-facing text names the class only.
    assert_eq!(
        m.to_string(),
        "a condition on the token's claims does not hold"
    );
    assert!(!m.to_string().contains("acme"));
}

#[test]
fn gitlab_ci_token_matches_and_near_misses_do_not() {
    let p = complete(
        templates::gitlab_ci(&GitlabCi {
            issuer: None,
            project_path: "acme/api".into(),
            git_ref: Some("main".into()),
            ref_protected: Some(true),
        })
        .unwrap(),
    );
    assert_eq!(p.issuer, "https://gitlab.com");
    let f = evaluate(&p, &gitlab(), NOW).unwrap();
    assert_eq!(
        Value::Object(f.copied),
        json!({"project_path": "acme/api", "ref": "main", "pipeline_id": "574", "namespace_path": "acme"})
    );
    for claims in [
        with(gitlab(), "ref_protected", json!("false")),
        // A boolean is not GitLab's string "true".
        with(gitlab(), "ref_protected", json!(true)),
        with(gitlab(), "project_path", json!("acme/api-fork")),
        with(gitlab(), "project_path", json!("acme-evil/api")),
        with(gitlab(), "ref", json!("main-evil")),
    ] {
        assert_eq!(class(evaluate(&p, &claims, NOW)), MismatchClass::Condition);
    }
    let self_managed = with(gitlab(), "iss", json!("https://gitlab.acme.example"));
    assert_eq!(
        class(evaluate(&p, &self_managed, NOW)),
        MismatchClass::Issuer
    );
}

#[test]
fn kubernetes_token_matches_and_other_namespaces_do_not() {
    let p =
        complete(templates::kubernetes("https://oidc.cluster.example", "ci", "deployer").unwrap());
    let f = evaluate(&p, &kubernetes(), NOW).unwrap();
    assert_eq!(f.subject, "system:serviceaccount:ci:deployer");
    assert_eq!(
        Value::Object(f.copied),
        json!({"kubernetes.io": {
            "namespace": "ci",
            "serviceaccount": {"name": "deployer"},
            "pod": {"name": "deployer-7d9f8b6c5-x2x4z"},
        }})
    );
    for sub in [
        "system:serviceaccount:prod:deployer",
        "system:serviceaccount:ci:deployer2",
        "system:serviceaccount:ci:deployer:x",
    ] {
        let claims = with(kubernetes(), "sub", json!(sub));
        assert_eq!(
            class(evaluate(&p, &claims, NOW)),
            MismatchClass::Condition,
            "{sub}"
        );
    }
    for (ns, sa) in [
        ("CI", "x"),
        ("ci:x", "y"),
        ("ci", "a:b"),
        ("", "x"),
        ("-ci", "x"),
    ] {
        assert!(
            templates::kubernetes("https://oidc.cluster.example", ns, sa).is_err(),
            "{ns} {sa}"
        );
    }
    assert!(templates::kubernetes("https://oidc.cluster.example", "ci", "build.bot").is_ok());
}

#[test]
fn templates_refuse_bad_input_and_always_have_a_condition() {
    let gh = |repo: &str| {
        templates::github_actions(&GithubActions {
            repository: repo.into(),
            ..Default::default()
        })
    };
    for bad in [
        "",
        "acme",
        "acme/",
        "/api",
        "acme/api/x",
        "ac me/api",
        "acme/*",
    ] {
        assert!(gh(bad).is_err(), "{bad}");
    }
    let p = gh("acme/api").unwrap();
    assert_eq!(p.conditions.len(), 1);
    assert_eq!(p.max_age_seconds, 600);
    assert!(
        templates::github_actions(&GithubActions {
            repository: "acme/api".into(),
            repository_owner_id: Some("acme".into()),
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        templates::gitlab_ci(&GitlabCi {
            project_path: "api".into(),
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        templates::gitlab_ci(&GitlabCi {
            issuer: Some("http://gitlab.acme.example".into()),
            project_path: "acme/api".into(),
            ..Default::default()
        })
        .is_err()
    );
    // A template is incomplete until the caller sets audience and account.
    assert!(p.validate().is_err());
}

#[test]
fn ref_globs_in_templates() {
    let p = complete(
        templates::github_actions(&GithubActions {
            repository: "acme/api".into(),
            git_ref: Some("refs/tags/v*".into()),
            ..Default::default()
        })
        .unwrap(),
    );
    assert!(evaluate(&p, &with(github(), "ref", json!("refs/tags/v1.2.3")), NOW).is_ok());
    assert!(evaluate(&p, &with(github(), "ref", json!("refs/tags/v1/evil")), NOW).is_err());
    assert!(evaluate(&p, &github(), NOW).is_err());
}

#[test]
fn issuer_and_audience() {
    let p = gh_policy();
    let m = evaluate(
        &p,
        &with(
            github(),
            "iss",
            json!("https://token.actions.githubusercontent.com/"),
        ),
        NOW,
    )
    .unwrap_err();
    assert_eq!(m.class, MismatchClass::Issuer);
    assert_eq!(
        class(evaluate(&p, &without(github(), "iss"), NOW)),
        MismatchClass::Issuer
    );
    assert_eq!(
        class(evaluate(
            &p,
            &with(github(), "aud", json!("https://warrant.example")),
            NOW
        )),
        MismatchClass::Audience
    );
    assert_eq!(
        class(evaluate(
            &p,
            &with(
                github(),
                "aud",
                json!(["https://a.example", "https://b.example"])
            ),
            NOW
        )),
        MismatchClass::Audience
    );
    assert_eq!(
        class(evaluate(&p, &without(github(), "aud"), NOW)),
        MismatchClass::Audience
    );
    assert_eq!(
        class(evaluate(
            &p,
            &with(github(), "aud", json!([[AUDIENCE]])),
            NOW
        )),
        MismatchClass::Audience
    );
    assert!(
        evaluate(
            &p,
            &with(github(), "aud", json!(["https://x.example", AUDIENCE])),
            NOW
        )
        .is_ok()
    );
}

#[test]
fn time_checks() {
    let p = gh_policy(); // max age 600
    let at = |iat: i64, exp: i64| {
        let c = with(
            with(without(github(), "nbf"), "iat", json!(iat)),
            "exp",
            json!(exp),
        );
        evaluate(&p, &c, NOW)
    };
    assert!(at(NOW - 600, NOW + 1).is_ok());
    assert_eq!(class(at(NOW - 601, NOW + 1)), MismatchClass::TooOld);
    assert_eq!(class(at(NOW - 60, NOW)), MismatchClass::Expired);
    assert_eq!(class(at(NOW - 60, NOW - 1)), MismatchClass::Expired);
    assert!(at(NOW + 60, NOW + 600).is_ok());
    assert_eq!(class(at(NOW + 61, NOW + 600)), MismatchClass::NotYetValid);
    assert_eq!(
        class(evaluate(&p, &without(github(), "exp"), NOW)),
        MismatchClass::Expired
    );
    assert_eq!(
        class(evaluate(&p, &with(github(), "exp", json!("soon")), NOW)),
        MismatchClass::Expired
    );
    assert_eq!(
        class(evaluate(&p, &without(github(), "iat"), NOW)),
        MismatchClass::TooOld
    );
    assert_eq!(
        class(evaluate(&p, &with(github(), "nbf", json!(NOW + 61)), NOW)),
        MismatchClass::NotYetValid
    );
    // Fractional NumericDates are accepted.
    assert!(
        evaluate(
            &p,
            &with(github(), "iat", json!((NOW - 10) as f64 + 0.5)),
            NOW
        )
        .is_ok()
    );
}

#[test]
fn single_use_needs_a_jti() {
    let mut p = gh_policy();
    p.single_use = true;
    let f = evaluate(&p, &github(), NOW).unwrap();
    assert_eq!(
        f.jti.as_deref(),
        Some("6f4a3b1e-9c2d-4e5f-8a7b-0c1d2e3f4a5b")
    );
    for claims in [
        without(github(), "jti"),
        with(github(), "jti", json!("")),
        with(github(), "jti", json!(7)),
        with(github(), "jti", json!("x".repeat(257))),
    ] {
        assert_eq!(class(evaluate(&p, &claims, NOW)), MismatchClass::MissingJti);
    }
}

#[test]
fn all_conditions_must_hold_and_sub_is_required() {
    let mut p = gh_policy();
    p.conditions = vec![
        Condition::new("repository", Check::Equals(json!("acme/api"))).unwrap(),
        Condition::new(
            "actor",
            Check::OneOf(vec![json!("octocat"), json!("release-bot")]),
        )
        .unwrap(),
        Condition::new("event_name", Check::Equals(json!("workflow_dispatch"))).unwrap(),
    ];
    let m = evaluate(&p, &github(), NOW).unwrap_err();
    assert_eq!(m.class, MismatchClass::Condition);
    assert!(m.detail.starts_with("event_name:"), "{}", m.detail);
    assert!(
        evaluate(
            &p,
            &with(github(), "event_name", json!("workflow_dispatch")),
            NOW
        )
        .is_ok()
    );
    assert_eq!(
        class(evaluate(&gh_policy(), &without(github(), "sub"), NOW)),
        MismatchClass::Condition
    );
    assert_eq!(
        class(evaluate(
            &gh_policy(),
            &with(github(), "sub", json!("")),
            NOW
        )),
        MismatchClass::Condition
    );
    // An unvalidated trust without conditions matches nothing.
    p.conditions.clear();
    assert_eq!(
        class(evaluate(&p, &github(), NOW)),
        MismatchClass::Condition
    );
}

#[test]
fn explain_lists_every_failure() {
    let k8s =
        complete(templates::kubernetes("https://oidc.cluster.example", "ci", "deployer").unwrap());
    let mut strict = gh_policy();
    strict.single_use = true;
    strict
        .conditions
        .push(Condition::new("event_name", Check::Equals(json!("release"))).unwrap());
    let claims = with(
        with(without(github(), "jti"), "environment", json!("staging")),
        "iat",
        json!(NOW - 3600),
    );
    let verdicts = explain(
        &[
            ("gh-main".into(), gh_policy()),
            ("gh-strict".into(), strict),
            ("k8s".into(), k8s),
        ],
        &with(claims.clone(), "iat", json!(NOW - 60)),
        NOW,
    );
    assert_eq!(verdicts.len(), 3);
    assert!(!verdicts[0].matched());
    assert_eq!(verdicts[0].failures.len(), 1);
    assert_eq!(
        verdicts[2].failures.len(),
        1,
        "another issuer is reported only as that"
    );
    assert_eq!(verdicts[2].failures[0].class, MismatchClass::Issuer);

    let verdicts = explain(
        &[("gh-strict".into(), {
            let mut s = gh_policy();
            s.single_use = true;
            s.conditions
                .push(Condition::new("event_name", Check::Equals(json!("release"))).unwrap());
            s
        })],
        &claims,
        NOW,
    );
    let classes: Vec<_> = verdicts[0].failures.iter().map(|m| m.class).collect();
    assert_eq!(
        classes,
        [
            MismatchClass::TooOld,
            MismatchClass::MissingJti,
            MismatchClass::Condition,
            MismatchClass::Condition
        ]
    );
    assert!(verdicts[0].failures[2].detail.starts_with("environment:"));
    assert!(verdicts[0].failures[3].detail.starts_with("event_name:"));

    let ok = explain(&[("gh".into(), gh_policy())], &github(), NOW);
    assert!(ok[0].matched() && ok[0].failures.is_empty());
    // Serializable for the admin API.
    let v = serde_json::to_value(&verdicts[0]).unwrap();
    assert_eq!(v["failures"][0]["class"], json!("too_old"));
}

#[test]
fn class_text_never_carries_detail() {
    let all = [
        MismatchClass::Issuer,
        MismatchClass::Audience,
        MismatchClass::Expired,
        MismatchClass::TooOld,
        MismatchClass::NotYetValid,
        MismatchClass::Condition,
        MismatchClass::Replay,
        MismatchClass::MissingJti,
    ];
    let p = gh_policy();
    let samples = [
        with(github(), "iss", json!("https://evil.example")),
        with(github(), "aud", json!("https://evil.example")),
        with(github(), "exp", json!(NOW - 1)),
        with(github(), "iat", json!(NOW - 9999)),
        with(github(), "iat", json!(NOW + 9999)),
        with(github(), "repository", json!("evil/repo")),
    ];
    for claims in samples {
        let m = evaluate(&p, &claims, NOW).unwrap_err();
        assert!(!m.detail.is_empty());
        assert_eq!(m.to_string(), m.class.as_str());
        assert!(!m.to_string().contains(&m.detail));
    }
    for c in all {
        let s = c.as_str();
        for secret in [
            "acme",
            "evil",
            "refs/",
            "https://",
            "production",
            "deployer",
        ] {
            assert!(!s.contains(secret), "{s}");
        }
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.code()));
    }
}

#[test]
fn oversized_copied_claims_are_left_out() {
    let mut p = gh_policy();
    p.copy_claims = vec![
        ClaimPath::parse("big").unwrap(),
        ClaimPath::parse("sha").unwrap(),
    ];
    let f = evaluate(&p, &with(github(), "big", json!("x".repeat(2000))), NOW).unwrap();
    assert_eq!(f.copied.keys().collect::<Vec<_>>(), ["sha"]);
}
