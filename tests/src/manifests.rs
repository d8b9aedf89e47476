//! The deployment files as data: the Kubernetes manifests under
//! `deploy/k8s/` (the base read file by file, or any kustomization rendered
//! with `kubectl kustomize`), looked at the way kubelet would: a container's
//! command, arguments, environment (ConfigMaps resolved, Secrets named),
//! ports and probes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// The services with a Deployment, in start order.
pub const SERVICES: [&str; 5] = [
    "identity",
    "accounts",
    "delegation",
    "gateway",
    "notifications",
];

/// The services with a database and a migration Job.
pub const DATABASE_SERVICES: [&str; 4] = ["identity", "accounts", "delegation", "notifications"];

/// Returns the repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// Parses every YAML document in `text` (skipping empty ones) as JSON values.
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Reads the base's resources: the files its `kustomization.yaml` lists, in
/// order (the base uses no transformers, so this is what it renders to).
pub fn base() -> anyhow::Result<Manifests> {
    let dir = repo_root().join("deploy/k8s/base");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml"))?;
    let kustomization = parse_documents(&kustomization)?;
    let resources = kustomization
        .first()
        .and_then(|k| k["resources"].as_array())
        .context("the base kustomization lists resources")?;
    let mut docs = Vec::new();
    for file in resources {
        let file = file.as_str().context("a resource is a file name")?;
        let text = std::fs::read_to_string(dir.join(file))
            .with_context(|| format!("read deploy/k8s/base/{file}"))?;
        docs.extend(parse_documents(&text).with_context(|| format!("parse {file}"))?);
    }
    Ok(Manifests { docs })
}

/// Renders `deploy/k8s/<target>` with `kubectl kustomize` (bounded to 60 s);
/// None when no kubectl is installed.
pub fn render(target: &str) -> anyhow::Result<Option<Manifests>> {
    let dir = repo_root().join("deploy/k8s").join(target);
    let child = match std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).context("start kubectl"),
    };
    let output = wait_bounded(child, Duration::from_secs(60))?;
    anyhow::ensure!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = parse_documents(&String::from_utf8_lossy(&output.stdout))?;
    Ok(Some(Manifests { docs }))
}

fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> anyhow::Result<std::process::Output> {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// Returns the image's ENTRYPOINT (exec form) from `deploy/Dockerfile`'s last stage.
pub fn dockerfile_entrypoint() -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(repo_root().join("deploy/Dockerfile"))?;
    let runtime = text
        .rsplit_once("\nFROM ")
        .context("the Dockerfile has stages")?
        .1;
    let line = runtime
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ENTRYPOINT "))
        .context("the runtime stage has an ENTRYPOINT")?;
    Ok(serde_json::from_str(line)?)
}

/// A set of Kubernetes resources.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The resources, as JSON.
    pub docs: Vec<Value>,
}

impl Manifests {
    /// Returns the resource of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    /// Returns every resource of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs.iter().filter(move |d| d["kind"] == kind)
    }

    /// Returns the workload (Deployment or Job) `kind`/`name`'s first container
    /// as kubelet would run it.
    pub fn container(&self, kind: &str, name: &str) -> anyhow::Result<Container> {
        let workload = self
            .get(kind, name)
            .with_context(|| format!("no {kind} {name}"))?;
        let pod = &workload["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut env = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for source in c["envFrom"].as_array().into_iter().flatten() {
            let name = source["configMapRef"]["name"]
                .as_str()
                .context("envFrom names a ConfigMap")?;
            let map = self.get("ConfigMap", name).with_context(|| {
                format!("{kind} {name} reads a ConfigMap {name} that is missing")
            })?;
            for (k, v) in map["data"].as_object().into_iter().flatten() {
                env.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
            }
        }
        for item in c["env"].as_array().into_iter().flatten() {
            let key = item["name"].as_str().context("env has a name")?.to_owned();
            if let Some(value) = item["value"].as_str() {
                env.insert(key, value.to_owned());
            } else if let Some(secret) = item["valueFrom"]["secretKeyRef"].as_object() {
                let name = secret["name"].as_str().unwrap_or_default().to_owned();
                let field = secret["key"].as_str().unwrap_or_default().to_owned();
                secrets.insert(key, (name, field));
            } else {
                anyhow::bail!("{kind} {name}: env {key} is neither a value nor a Secret key");
            }
        }
        let mut mounts = Vec::new();
        for mount in c["volumeMounts"].as_array().into_iter().flatten() {
            let volume_name = mount["name"].as_str().unwrap_or_default();
            let volume = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == volume_name)
                .with_context(|| format!("{kind} {name} mounts a missing volume {volume_name}"))?;
            mounts.push(Mount {
                path: mount["mountPath"].as_str().unwrap_or_default().to_owned(),
                config_map: volume["configMap"]["name"].as_str().map(str::to_owned),
            });
        }
        let probe = |key: &str| c[key]["grpc"]["port"].as_u64().map(|p| p as u16);
        Ok(Container {
            command: strings(&c["command"]),
            args: strings(&c["args"]),
            env,
            secrets,
            port: c["ports"][0]["containerPort"].as_u64().map(|p| p as u16),
            ports: c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p["name"].as_str()?.to_owned(),
                        p["containerPort"].as_u64()? as u16,
                    ))
                })
                .collect(),
            startup_probe: probe("startupProbe"),
            readiness_probe: probe("readinessProbe"),
            liveness_probe: probe("livenessProbe"),
            mounts,
        })
    }
}

/// A volume mount of a container.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where it is mounted.
    pub path: String,
    /// The ConfigMap projected there, if that is what it is.
    pub config_map: Option<String>,
}

/// A container as kubelet would start it.
#[derive(Debug, Clone)]
pub struct Container {
    /// `command` (the image's ENTRYPOINT when it repeats it).
    pub command: Vec<String>,
    /// `args`.
    pub args: Vec<String>,
    /// Environment from values and ConfigMaps.
    pub env: BTreeMap<String, String>,
    /// Environment from Secrets: variable → (Secret, key).
    pub secrets: BTreeMap<String, (String, String)>,
    /// The first container port.
    pub port: Option<u16>,
    /// Every named container port: name → port.
    pub ports: BTreeMap<String, u16>,
    /// The startup probe's gRPC port.
    pub startup_probe: Option<u16>,
    /// The readiness probe's gRPC port.
    pub readiness_probe: Option<u16>,
    /// The liveness probe's gRPC port.
    pub liveness_probe: Option<u16>,
    /// Volume mounts.
    pub mounts: Vec<Mount>,
}
