//! The Kubernetes base (`deploy/k8s/base`): every service has a Deployment
//! with startup, readiness and liveness probes on grpc.health.v1, resources,
//! a locked-down securityContext and a termination budget that covers its
//! drain settings; a Service, a headless Service, an HPA and a PDB that select
//! its pods; a migration Job where it has a database; and its ConfigMap loads
//! as the configuration the process reads. `deploy/check` validates the
//! schemas and renders the overlays; this reads what the manifests mean.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};

use ccp_e2e::manifests::{self, DATABASE_SERVICES, Manifests, SERVICES};
use serde_json::Value;

fn base() -> Manifests {
    manifests::base().expect("deploy/k8s/base reads")
}

/// Returns true when every label of `wanted` (a non-empty map) is on `labels`.
fn has_labels(wanted: &Value, labels: &Value) -> bool {
    wanted
        .as_object()
        .is_some_and(|w| !w.is_empty() && w.iter().all(|(k, v)| &labels[k] == v))
}

/// Returns true when a label selector's `matchLabels` select `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    has_labels(&selector["matchLabels"], labels)
}

/// Loads the suite's configuration from a container's environment, with
/// placeholder values for the Secrets it names.
fn settings_of(container: &manifests::Container) -> ccp::settings::SuiteSettings {
    let mut env: HashMap<String, String> = container.env.clone().into_iter().collect();
    let key = ccp_platform::auth::InternalTokens::generate_key();
    for var in container.secrets.keys() {
        let value = if var.ends_with("__DATABASE__URL") {
            "postgres://ccp@db.example:5432/ccp".to_owned()
        } else if var == "CCP_REDIS__URL" {
            "redis://redis.example:6379".to_owned()
        } else if var == "CCP_NOTIFICATIONS__SMTP_URL" {
            "smtp://ccp:secret@smtp.example:587?tls=required".to_owned()
        } else {
            key.clone()
        };
        env.insert(var.clone(), value);
    }
    ccp_platform::config::load_with_env("", None, env)
        .unwrap_or_else(|e| panic!("the container's environment does not load: {e}"))
}

#[test]
fn every_service_has_a_probed_locked_down_deployment_a_service_an_hpa_and_a_pdb() {
    let m = base();
    let entrypoint = manifests::dockerfile_entrypoint().unwrap();
    for service in SERVICES {
        let deployment = m
            .get("Deployment", service)
            .unwrap_or_else(|| panic!("{service}: no Deployment"));
        let pod = &deployment["spec"]["template"]["spec"];
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        assert!(
            selects(&deployment["spec"]["selector"], pod_labels),
            "{service}: the Deployment selects its own pods"
        );
        let raw = &pod["containers"][0];
        let c = m.container("Deployment", service).unwrap();

        // The image's ENTRYPOINT with the service as argument.
        assert_eq!(c.command, entrypoint, "{service}: command");
        assert_eq!(
            c.args.first().map(String::as_str),
            Some(service),
            "{service}: args"
        );
        let port = c
            .port
            .unwrap_or_else(|| panic!("{service}: no container port"));

        // All three probes ask grpc.health.v1 on the serving port.
        assert_eq!(c.startup_probe, Some(port), "{service}: startupProbe");
        assert_eq!(c.readiness_probe, Some(port), "{service}: readinessProbe");
        assert_eq!(c.liveness_probe, Some(port), "{service}: livenessProbe");

        // Resources: requests for scheduling and the HPA, a memory limit.
        for path in [
            &raw["resources"]["requests"]["cpu"],
            &raw["resources"]["requests"]["memory"],
            &raw["resources"]["limits"]["memory"],
        ] {
            assert!(
                path.is_string(),
                "{service}: resources {}",
                raw["resources"]
            );
        }

        // securityContext: non-root, read-only root, no privilege escalation.
        let sc = &raw["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{service}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{service}");
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{service}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{service}");
        assert!(
            pod["securityContext"]["runAsUser"]
                .as_u64()
                .is_some_and(|u| u > 0),
            "{service}: a numeric non-root user"
        );
        assert!(
            pod["topologySpreadConstraints"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "{service}: topologySpreadConstraints"
        );

        // The configuration the process reads: it listens on the container
        // port, never migrates at start, and its drain fits the pod's budget.
        let settings = settings_of(&c);
        let server = match service {
            "identity" => &settings.identity.server,
            "accounts" => &settings.accounts.server,
            "delegation" => &settings.delegation.server,
            "notifications" => &settings.notifications.server,
            _ => &settings.gateway.server,
        };
        assert_eq!(
            server.listen,
            format!("0.0.0.0:{port}"),
            "{service}: listen"
        );
        let pre_stop = raw["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{service}: preStop sleep"));
        assert!(
            server.drain_delay_ms > 0,
            "{service}: drain_delay_ms is set"
        );
        assert_eq!(
            pre_stop * 1000,
            server.drain_delay_ms,
            "{service}: preStop matches the drain delay"
        );
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            grace * 1000 >= pre_stop * 1000 + server.drain_delay_ms + server.request_timeout_ms,
            "{service}: terminationGracePeriodSeconds {grace} covers preStop, drain and calls in flight"
        );
        if service != "gateway" {
            let db = match service {
                "identity" => &settings.identity.database,
                "accounts" => &settings.accounts.database,
                "notifications" => &settings.notifications.database,
                _ => &settings.delegation.database,
            };
            assert!(!db.migrate_on_start, "{service}: migrations run as a Job");
            assert!(db.is_postgres(), "{service}: PostgreSQL from its Secret");
        }

        // Services: one ClusterIP and one headless, both on the container port.
        for (name, headless) in [
            (service.to_owned(), false),
            (format!("{service}-headless"), true),
        ] {
            let svc = m
                .get("Service", &name)
                .unwrap_or_else(|| panic!("{service}: no Service {name}"));
            assert!(
                has_labels(&svc["spec"]["selector"], pod_labels),
                "{name} selects {service}'s pods"
            );
            assert_eq!(svc["spec"]["ports"][0]["port"], port, "{name}: port");
            assert_eq!(
                svc["spec"]["clusterIP"] == "None",
                headless,
                "{name}: headless"
            );
        }

        let hpa = m
            .get("HorizontalPodAutoscaler", service)
            .unwrap_or_else(|| panic!("{service}: no HorizontalPodAutoscaler"));
        assert_eq!(hpa["apiVersion"], "autoscaling/v2", "{service}");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], service);
        assert!(
            hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2,
            "{service}: HA by default"
        );
        assert!(
            deployment["spec"]["replicas"].is_null(),
            "{service}: the HPA owns the replica count (replicas in the Deployment would reset it on every apply)"
        );

        let pdb = m
            .get("PodDisruptionBudget", service)
            .unwrap_or_else(|| panic!("{service}: no PodDisruptionBudget"));
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert!(
            selects(&pdb["spec"]["selector"], pod_labels),
            "{service}: PDB selects its pods"
        );
    }
}

#[test]
fn every_service_with_a_database_has_a_migration_job_outside_its_deployment() {
    let m = base();
    let entrypoint = manifests::dockerfile_entrypoint().unwrap();
    for service in DATABASE_SERVICES {
        let name = format!("{service}-migrate");
        let job = m
            .get("Job", &name)
            .unwrap_or_else(|| panic!("no Job {name}"));
        let c = m.container("Job", &name).unwrap();
        assert_eq!(c.command, [entrypoint[0].as_str(), "migrate"], "{name}");
        assert_eq!(c.args, [service], "{name}");
        let settings = settings_of(&c);
        assert!(settings.common.internal_auth.key_bytes().unwrap().is_some());
        // Its pods are not the Deployment's (a selector match would count them).
        let deployment = m.get("Deployment", service).unwrap();
        assert!(
            !selects(
                &deployment["spec"]["selector"],
                &job["spec"]["template"]["metadata"]["labels"]
            ),
            "{name}: its pods must not match the {service} Deployment"
        );
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        // The migration needs no identity secret but its database.
        assert!(
            !c.secrets.contains_key("CCP_IDENTITY__KEY_ENCRYPTION_KEY"),
            "{name}: no key-encryption key"
        );
        assert!(
            c.secrets
                .contains_key(&format!("CCP_{}__DATABASE__URL", service.to_uppercase())),
            "{name}: its database URL"
        );
    }
}

#[test]
fn secrets_are_referenced_never_embedded_and_documented() {
    let m = base();
    assert_eq!(
        m.of_kind("Secret").count(),
        0,
        "no Secret is written in the base"
    );
    let operations = std::fs::read_to_string(manifests::repo_root().join("docs/operations.md"))
        .expect("docs/operations.md");
    let mut names = BTreeSet::new();
    for kind in ["Deployment", "Job"] {
        for workload in m.of_kind(kind) {
            let name = workload["metadata"]["name"].as_str().unwrap();
            let c = m.container(kind, name).unwrap();
            for (var, (secret, _)) in &c.secrets {
                assert!(var.starts_with("CCP_"), "{name}: {var}");
                names.insert(secret.clone());
            }
            for value in c.env.values() {
                assert!(
                    !value.contains("://") || !value.contains('@'),
                    "{name}: a credential-bearing URL in a ConfigMap: {value}"
                );
            }
        }
    }
    assert!(names.contains("ccp-internal-auth") && names.contains("identity-kek"));
    for secret in &names {
        assert!(
            operations.contains(&format!("`{secret}`")),
            "docs/operations.md does not document the Secret `{secret}`"
        );
    }
}

#[test]
fn network_policies_admit_each_port_only_from_its_callers() {
    let m = base();
    // Callers admitted to `port` of `service`.
    let admitted = |service: &str, port: u64| -> BTreeSet<String> {
        let policy = m
            .get("NetworkPolicy", &format!("{service}-ingress"))
            .unwrap_or_else(|| panic!("no {service}-ingress"));
        let mut callers = BTreeSet::new();
        for rule in policy["spec"]["ingress"].as_array().unwrap() {
            let ports: Vec<u64> = rule["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_u64().unwrap())
                .collect();
            if !ports.contains(&port) {
                continue;
            }
            for from in rule["from"].as_array().into_iter().flatten() {
                let sel = &from["podSelector"];
                if let Some(name) = sel["matchLabels"]["app.kubernetes.io/name"].as_str() {
                    callers.insert(name.to_owned());
                }
                if let Some(component) = sel["matchLabels"]["app.kubernetes.io/component"].as_str()
                {
                    callers.insert(component.to_owned());
                }
                for expr in sel["matchExpressions"].as_array().into_iter().flatten() {
                    if expr["key"] == "app.kubernetes.io/name" {
                        for v in expr["values"].as_array().unwrap() {
                            callers.insert(v.as_str().unwrap().to_owned());
                        }
                    }
                }
            }
        }
        callers
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    // Public APIs: the gateway forwards to each; identity's also serves its
    // signing keys to the services that verify access tokens.
    assert_eq!(
        admitted("identity", 50051),
        set(&["accounts", "delegation", "gateway"])
    );
    assert_eq!(admitted("accounts", 50052), set(&["gateway"]));
    assert_eq!(admitted("delegation", 50053), set(&["gateway"]));
    // Facts APIs: only the services that read them (and operators' registry import).
    assert_eq!(
        admitted("identity", 50061),
        set(&["accounts", "gateway", "notifications"])
    );
    assert_eq!(
        admitted("accounts", 50062),
        set(&["delegation", "gateway", "notifications", "operator"])
    );
    assert_eq!(admitted("delegation", 50063), set(&["gateway"]));
    // Notifications' operator API: operators only (`ccp notifications failed|retry`).
    assert_eq!(admitted("notifications", 50054), set(&["operator"]));
    let deny = m
        .get("NetworkPolicy", "ccp-default-deny")
        .expect("a default deny");
    assert_eq!(
        deny["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
}

/// Identity, accounts and delegation serve their facts APIs on a `facts` port
/// of their own (`INTERNAL_LISTEN`), both Services expose it, and every caller
/// reaches each upstream API through the headless Service's port for it.
#[test]
fn facts_apis_have_their_own_port_and_callers_use_it() {
    let m = base();
    let facts_ports = [
        ("identity", 50061),
        ("accounts", 50062),
        ("delegation", 50063),
    ];
    for (service, facts) in facts_ports {
        let c = m.container("Deployment", service).unwrap();
        assert_eq!(
            c.ports.get("facts"),
            Some(&facts),
            "{service}: facts container port"
        );
        let key = format!("CCP_{}__SERVER__INTERNAL_LISTEN", service.to_uppercase());
        assert_eq!(
            c.env.get(&key).map(String::as_str),
            Some(format!("0.0.0.0:{facts}").as_str()),
            "{service}: {key}"
        );
        for name in [service.to_owned(), format!("{service}-headless")] {
            let svc = m.get("Service", &name).unwrap();
            let port = svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "facts")
                .unwrap_or_else(|| panic!("Service {name} has no facts port"));
            assert_eq!(port["port"], facts, "Service {name}");
            assert_eq!(port["targetPort"], "facts", "Service {name}");
        }
    }
    // (caller, variable, upstream URL)
    let wiring = [
        (
            "accounts",
            "CCP_ACCOUNTS__IDENTITY_ENDPOINT",
            "http://identity-headless:50051",
        ),
        (
            "accounts",
            "CCP_ACCOUNTS__IDENTITY_FACTS_ENDPOINT",
            "http://identity-headless:50061",
        ),
        (
            "delegation",
            "CCP_DELEGATION__IDENTITY_ENDPOINT",
            "http://identity-headless:50051",
        ),
        (
            "delegation",
            "CCP_DELEGATION__ACCOUNTS_ENDPOINT",
            "http://accounts-headless:50052",
        ),
        (
            "delegation",
            "CCP_DELEGATION__ACCOUNTS_FACTS_ENDPOINT",
            "http://accounts-headless:50062",
        ),
        (
            "gateway",
            "CCP_GATEWAY__IDENTITY_ENDPOINT",
            "http://identity-headless:50051",
        ),
        (
            "gateway",
            "CCP_GATEWAY__ACCOUNTS_ENDPOINT",
            "http://accounts-headless:50052",
        ),
        (
            "gateway",
            "CCP_GATEWAY__DELEGATION_ENDPOINT",
            "http://delegation-headless:50053",
        ),
        (
            "gateway",
            "CCP_GATEWAY__IDENTITY_FACTS_ENDPOINT",
            "http://identity-headless:50061",
        ),
        (
            "gateway",
            "CCP_GATEWAY__ACCOUNTS_FACTS_ENDPOINT",
            "http://accounts-headless:50062",
        ),
        (
            "gateway",
            "CCP_GATEWAY__DELEGATION_FACTS_ENDPOINT",
            "http://delegation-headless:50063",
        ),
        (
            "notifications",
            "CCP_NOTIFICATIONS__IDENTITY_FACTS_ENDPOINT",
            "http://identity-headless:50061",
        ),
        (
            "notifications",
            "CCP_NOTIFICATIONS__ACCOUNTS_FACTS_ENDPOINT",
            "http://accounts-headless:50062",
        ),
    ];
    for (caller, key, url) in wiring {
        let c = m.container("Deployment", caller).unwrap();
        assert_eq!(
            c.env.get(key).map(String::as_str),
            Some(url),
            "{caller}: {key}"
        );
    }
}

/// Every server pod exposes its metrics port, says so to Prometheus, and
/// lets the monitoring namespace scrape it through the default deny.
#[test]
fn every_deployment_is_scraped_on_its_metrics_port() {
    let m = base();
    for service in SERVICES {
        let deployment = m.get("Deployment", service).unwrap();
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true", "{service}");
        assert_eq!(annotations["prometheus.io/port"], "9464", "{service}");
        assert_eq!(annotations["prometheus.io/path"], "/metrics", "{service}");
        let c = m.container("Deployment", service).unwrap();
        assert_eq!(
            c.ports.get("metrics"),
            Some(&9464),
            "{service}: metrics port"
        );
        assert_eq!(
            c.env
                .get("CCP_TELEMETRY__METRICS_LISTEN")
                .map(String::as_str),
            Some("0.0.0.0:9464"),
            "{service}"
        );
    }
    let policy = m
        .get("NetworkPolicy", "ccp-metrics-ingress")
        .expect("a policy admitting scrapes");
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"][0]["port"],
        serde_json::json!(9464)
    );
}
