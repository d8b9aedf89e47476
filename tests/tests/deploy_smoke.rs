//! A smoke test driven by the Kubernetes manifests: the `dev` overlay is
//! rendered (`kubectl kustomize`), and its migration Jobs and Deployments run
//! as local processes of the built `ccp` binary with exactly the command,
//! arguments and environment kubelet would give them — ConfigMaps resolved,
//! ConfigMap volumes projected as files, Secrets filled with this test's own
//! values — overriding only what points outside this machine: the PostgreSQL
//! and Redis URLs (test database, test Redis and a fresh key prefix), Service
//! hosts and container ports (loopback, spare ports: a Service host becomes its
//! first pod, a headless Service the list of all its pods, as its DNS would
//! answer), the collector's host,
//! and mount paths (under a temporary root). Every probe is checked the way
//! kubelet checks it (grpc.health.v1 on the probe's port), then a short
//! story goes through the gateway: a test user signs in with the test-users
//! issuer and creates a profile. No container engine exists here, so the
//! image itself is not built; `deploy/check` checks the Dockerfile statically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ccp_e2e::ccp_binary;
use ccp_e2e::manifests::{self, Container, DATABASE_SERVICES, Manifests, SERVICES};
use ccp_platform::testing::spare_port;
use tokio::process::{Child, Command};
use tonic_health::pb::health_check_response::ServingStatus;

/// A process started from a workload, and what it listens on.
struct Pod {
    name: String,
    port: u16,
    child: Child,
    log: PathBuf,
    grace: Duration,
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The loopback ports one pod serves on, in place of its container ports.
#[derive(Debug, Clone, Copy)]
struct PodPorts {
    /// The public API (`listen`, container port `grpc`).
    grpc: u16,
    /// The internal facts API (`internal_listen`, container port `facts`).
    facts: u16,
    /// Prometheus text (`telemetry.metrics_listen`, container port `metrics`).
    metrics: u16,
}

/// The container ports of the manifests: (service, `grpc`, `facts`).
const CONTAINER_PORTS: [(&str, u16, Option<u16>); 5] = [
    ("gateway", 50050, None),
    ("identity", 50051, Some(50061)),
    ("accounts", 50052, Some(50062)),
    ("delegation", 50053, Some(50063)),
    ("notifications", 50054, None),
];

/// What the test puts where the cluster would differ from this machine.
struct Environment {
    root: PathBuf,
    /// Service name → the loopback ports of its pods, one per replica.
    service_ports: BTreeMap<String, Vec<PodPorts>>,
    /// Secret (name, key) → value.
    secrets: BTreeMap<(String, String), String>,
    /// ConfigMaps made out of band (the test-users issuer's JWKS).
    extra_config_maps: BTreeMap<String, BTreeMap<String, String>>,
    redis_prefix: String,
    collector_port: u16,
}

impl Environment {
    /// Rewrites a mount path to its place under the temporary root.
    fn remap_paths(&self, text: &str, mounts: &[manifests::Mount]) -> String {
        // Through placeholders, so that a mount under /tmp does not rewrite
        // the temporary root a first mount was moved to.
        let mut text = text.to_owned();
        for (i, mount) in mounts.iter().enumerate() {
            text = text.replace(&format!("{}/", mount.path), &format!("\u{0}{i}\u{0}"));
        }
        for (i, mount) in mounts.iter().enumerate() {
            let local = format!("{}{}/", self.root.display(), mount.path);
            text = text.replace(&format!("\u{0}{i}\u{0}"), &local);
        }
        text
    }

    /// Rewrites Service hosts and the collector's host to loopback ports: a
    /// ClusterIP Service to its first pod, a headless one to all its pods.
    fn remap_hosts(&self, value: &str) -> String {
        let mut value = value.to_owned();
        for (service, grpc, facts) in CONTAINER_PORTS {
            let pods = &self.service_ports[service];
            let urls = |pick: fn(&PodPorts) -> u16| -> Vec<String> {
                pods.iter()
                    .map(|p| format!("http://127.0.0.1:{}", pick(p)))
                    .collect()
            };
            let mut mapped = vec![(grpc, urls(|p| p.grpc))];
            if let Some(facts) = facts {
                mapped.push((facts, urls(|p| p.facts)));
            }
            for (container_port, all) in mapped {
                value = value.replace(
                    &format!("http://{service}-headless:{container_port}"),
                    &all.join(","),
                );
                value = value.replace(&format!("http://{service}:{container_port}"), &all[0]);
            }
        }
        if value.starts_with("http://otel-collector") {
            value = format!("http://127.0.0.1:{}", self.collector_port);
        }
        value
    }

    /// Returns the command line and environment kubelet would run for `c`,
    /// listening on `ports`, with its ConfigMap volumes projected.
    fn process_of(
        &self,
        c: &Container,
        m: &Manifests,
        ports: Option<PodPorts>,
    ) -> (Vec<String>, Vec<(String, String)>) {
        for mount in &c.mounts {
            let Some(name) = &mount.config_map else {
                continue;
            };
            let data: BTreeMap<String, String> = match m.get("ConfigMap", name) {
                Some(map) => map["data"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect(),
                None => self
                    .extra_config_maps
                    .get(name)
                    .unwrap_or_else(|| {
                        panic!("ConfigMap {name} is neither rendered nor made by the test")
                    })
                    .clone(),
            };
            let dir = PathBuf::from(format!("{}{}", self.root.display(), mount.path));
            std::fs::create_dir_all(&dir).unwrap();
            for (file, contents) in data {
                std::fs::write(dir.join(file), self.remap_paths(&contents, &c.mounts)).unwrap();
            }
        }
        let mut argv = vec![ccp_binary().unwrap().display().to_string()];
        argv.extend(c.command.iter().skip(1).cloned());
        argv.extend(c.args.iter().map(|a| self.remap_paths(a, &c.mounts)));
        let mut env: Vec<(String, String)> = Vec::new();
        for (key, value) in &c.env {
            let mut value = self.remap_hosts(&self.remap_paths(value, &c.mounts));
            if let Some(ports) = ports {
                if key.ends_with("__SERVER__LISTEN") {
                    value = format!("127.0.0.1:{}", ports.grpc);
                } else if key.ends_with("__SERVER__INTERNAL_LISTEN") {
                    value = format!("127.0.0.1:{}", ports.facts);
                } else if key == "CCP_TELEMETRY__METRICS_LISTEN" {
                    value = format!("127.0.0.1:{}", ports.metrics);
                }
            }
            if key == "CCP_REDIS__KEY_PREFIX" {
                value = self.redis_prefix.clone();
            }
            env.push((key.clone(), value));
        }
        for (key, (secret, field)) in &c.secrets {
            let value = self
                .secrets
                .get(&(secret.clone(), field.clone()))
                .unwrap_or_else(|| panic!("the test has no Secret {secret}/{field}"));
            env.push((key.clone(), value.clone()));
        }
        (argv, env)
    }
}

async fn spawn(argv: &[String], env: &[(String, String)], log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    for (key, _) in std::env::vars() {
        if key.starts_with("CCP_") {
            command.env_remove(key);
        }
    }
    command
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {argv:?}: {e}"))
}

/// Asks grpc.health.v1 like kubelet's `grpc:` probe, until SERVING or `limit`.
async fn probe_until_serving(port: u16, limit: Duration) -> Result<(), String> {
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = ccp::health_cmd::check(&endpoint, "", &Default::default()).await;
        if matches!(status, Ok(ServingStatus::Serving)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{endpoint}: {status:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a client command against the gateway with a session file of its own.
async fn client(args: &[&str], session: &Path, gateway: u16) -> (bool, String, String) {
    let mut command = Command::new(ccp_binary().unwrap());
    for (key, _) in std::env::vars() {
        if key.starts_with("CCP_") {
            command.env_remove(key);
        }
    }
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        command
            .args(args)
            .env("CCP_GATEWAY_URL", format!("http://127.0.0.1:{gateway}"))
            .env("CCP_SESSION", session)
            .env("CCP_TELEMETRY__LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("a client command finished within 60 s")
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_dev_overlay_runs_as_local_processes_passes_its_probes_and_serves_a_signed_in_user() {
    let (Some(_), Some(redis)) = (
        ccp_platform::testing::postgres_url(),
        ccp_platform::testing::redis_url(),
    ) else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        return;
    };
    let Some(m) = manifests::render("overlays/dev").unwrap() else {
        assert!(
            std::env::var("CI").is_err(),
            "kubectl is missing in CI: deploy/check installs it before the tests"
        );
        eprintln!("skipped: no kubectl to render deploy/k8s/overlays/dev");
        return;
    };
    // One database for the three services: each keeps to its own schema.
    let database = ccp_platform::testing::TestDatabase::create().await.unwrap();
    let root = ccp_platform::testing::tempfile_dir::TempDir::new();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // The test-users issuer: its key stays here, its JWKS becomes the ConfigMap.
    let issuer_dir = work.join("issuer");
    let init = std::process::Command::new(ccp_binary().unwrap())
        .args(["test-issuer", "init"])
        .arg(&issuer_dir)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let jwks = std::fs::read_to_string(issuer_dir.join("jwks.json")).unwrap();

    let internal_key = ccp_platform::auth::InternalTokens::generate_key();
    let kek = ccp_platform::auth::InternalTokens::generate_key();
    let mut secrets = BTreeMap::new();
    secrets.insert(
        ("ccp-internal-auth".to_owned(), "key".to_owned()),
        internal_key,
    );
    secrets.insert(("identity-kek".to_owned(), "key".to_owned()), kek);
    secrets.insert(("ccp-redis".to_owned(), "url".to_owned()), redis);
    // No mail goes out in this story; a port nothing listens on.
    secrets.insert(
        ("notifications-smtp".to_owned(), "url".to_owned()),
        format!("smtp://127.0.0.1:{}", spare_port()),
    );
    for service in DATABASE_SERVICES {
        secrets.insert(
            (format!("{service}-database"), "url".to_owned()),
            database.url().to_owned(),
        );
    }
    // The HPA owns the replica count: at rest it holds minReplicas. Every
    // pod's ports are chosen up front, so that a caller's headless Service
    // names all the pods of its upstream.
    let replicas_of = |service: &str| {
        m.get("HorizontalPodAutoscaler", service)
            .and_then(|hpa| hpa["spec"]["minReplicas"].as_u64())
            .unwrap_or(1)
    };
    let mut service_ports = BTreeMap::new();
    for service in SERVICES {
        let pods = (0..replicas_of(service))
            .map(|_| PodPorts {
                grpc: spare_port(),
                facts: spare_port(),
                metrics: spare_port(),
            })
            .collect::<Vec<_>>();
        service_ports.insert(service.to_owned(), pods);
    }
    let env = Environment {
        root: root.path().join("rootfs"),
        service_ports: service_ports.clone(),
        secrets,
        extra_config_maps: BTreeMap::from([(
            "ccp-test-issuer-jwks".to_owned(),
            BTreeMap::from([("jwks.json".to_owned(), jwks)]),
        )]),
        redis_prefix: ccp_platform::testing::unique_prefix(),
        collector_port: spare_port(),
    };

    // The migration Jobs, each to completion.
    for service in DATABASE_SERVICES {
        let name = format!("{service}-migrate");
        let c = m.container("Job", &name).unwrap();
        let (argv, vars) = env.process_of(&c, &m, None);
        let log = work.join(format!("{name}.log"));
        let mut child = spawn(&argv, &vars, &log).await;
        let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
            .await
            .unwrap_or_else(|_| panic!("{name} ran longer than 120 s"))
            .unwrap();
        assert!(
            status.success(),
            "{name} failed ({status}):\n{}",
            tail(&log)
        );
    }

    // Every Deployment, with its replicas, in dependency order; each replica
    // passes its startup probe before the next starts (as readiness gates
    // traffic), then its readiness and liveness probes.
    let mut pods: Vec<Pod> = Vec::new();
    for service in SERVICES {
        let deployment = m.get("Deployment", service).unwrap();
        let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap_or(30);
        let raw = &deployment["spec"]["template"]["spec"]["containers"][0];
        let startup = &raw["startupProbe"];
        let startup_budget = startup["periodSeconds"].as_u64().unwrap_or(10)
            * startup["failureThreshold"].as_u64().unwrap_or(3);
        let c = m.container("Deployment", service).unwrap();
        let container_port = c.port.unwrap();
        let (_, grpc_port, facts_port) = CONTAINER_PORTS
            .into_iter()
            .find(|(name, ..)| *name == service)
            .unwrap();
        assert_eq!(
            c.ports.get("grpc"),
            Some(&grpc_port),
            "{service}: grpc port"
        );
        assert_eq!(
            c.ports.get("facts"),
            facts_port.as_ref(),
            "{service}: facts port"
        );
        for (replica, ports) in service_ports[service].iter().enumerate() {
            let port = ports.grpc;
            let (argv, vars) = env.process_of(&c, &m, Some(*ports));
            let name = format!("{service}-{replica}");
            let log = work.join(format!("{name}.log"));
            let child = spawn(&argv, &vars, &log).await;
            let mut pod = Pod {
                name: name.clone(),
                port,
                child,
                log,
                grace: Duration::from_secs(grace),
            };
            // Probes name the container port; this process serves it on `port`.
            for (probe, probe_port) in [
                ("startupProbe", c.startup_probe),
                ("readinessProbe", c.readiness_probe),
                ("livenessProbe", c.liveness_probe),
            ] {
                assert_eq!(probe_port, Some(container_port), "{name}: {probe} port");
                let limit = if probe == "startupProbe" {
                    Duration::from_secs(startup_budget)
                } else {
                    Duration::from_secs(raw[probe]["timeoutSeconds"].as_u64().unwrap_or(1) + 1)
                };
                if let Err(err) = probe_until_serving(port, limit).await {
                    let exited = pod.child.try_wait().ok().flatten();
                    panic!(
                        "{name}: {probe} failed: {err} (exited: {exited:?})\n{}",
                        tail(&pod.log)
                    );
                }
            }
            // What Prometheus would scrape (the annotated `metrics` port): the
            // probes above are calls it counts.
            let scraped = reqwest::get(format!("http://127.0.0.1:{}/metrics", ports.metrics))
                .await
                .unwrap_or_else(|e| panic!("{name}: metrics scrape: {e}"));
            assert!(scraped.status().is_success(), "{name}: metrics scrape");
            let text = scraped.text().await.unwrap();
            assert!(
                text.contains("rpc_server_duration_seconds"),
                "{name}: no RPC series in its metrics:\n{text}"
            );
            pods.push(pod);
        }
    }
    let gateways: Vec<u16> = pods
        .iter()
        .filter(|p| p.name.starts_with("gateway-"))
        .map(|p| p.port)
        .collect();
    assert_eq!(gateways.len(), 2, "the dev overlay runs two gateways");

    // The guide's first steps through the gateway: sign in, create a profile,
    // and see it through the other replica.
    let session = work.join("session.json");
    let token = std::process::Command::new(ccp_binary().unwrap())
        .args(["test-issuer", "token", "alice", "--key"])
        .arg(issuer_dir.join("test-issuer.key"))
        .output()
        .unwrap();
    assert!(token.status.success());
    let token_file = work.join("alice.jwt");
    std::fs::write(&token_file, &token.stdout).unwrap();
    let logs = |pods: &[Pod]| -> String {
        pods.iter()
            .map(|p| format!("--- {}\n{}", p.name, tail(&p.log)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let token_path = token_file.display().to_string();
    let (ok, out, err) = client(
        &["login", "--id-token-file", &token_path],
        &session,
        gateways[0],
    )
    .await;
    assert!(ok, "sign-in failed: {out}{err}\n{}", logs(&pods));
    assert!(out.contains("signed in as"), "{out}");
    let (ok, out, err) = client(
        &[
            "profile",
            "create",
            "--legal-name",
            "Alice Martin",
            "--email",
            "alice@abc.example",
        ],
        &session,
        gateways[0],
    )
    .await;
    assert!(ok, "profile create failed: {out}{err}\n{}", logs(&pods));
    let (ok, out, err) = client(&["profile", "show", "--json"], &session, gateways[1]).await;
    assert!(
        ok,
        "profile show through the second gateway failed: {out}{err}"
    );
    assert!(out.contains("Alice Martin"), "{out}");

    // SIGTERM as kubelet sends it after preStop: each server turns NOT_SERVING
    // at once, keeps answering for the drain delay, and exits within its grace.
    for pod in &pods {
        let pid = pod.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for pod in &pods {
        let status = ccp::health_cmd::check(
            &format!("http://127.0.0.1:{}", pod.port),
            "",
            &Default::default(),
        )
        .await;
        assert!(
            matches!(status, Ok(ServingStatus::NotServing)),
            "{}: draining answers NOT_SERVING, got {status:?}",
            pod.name
        );
    }
    for mut pod in pods {
        let status = tokio::time::timeout(pod.grace, pod.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} outlived its grace period", pod.name))
            .unwrap();
        assert!(
            status.success(),
            "{} exited {status}:\n{}",
            pod.name,
            tail(&pod.log)
        );
    }
    drop(database);
}
