//! `ccp bench scale`: does the Check path hold up when the services' tables
//! are big? The services run on PostgreSQL (a fresh database per service,
//! dropped at the end, also on failure). A few real principals are seeded
//! through the services' RPCs (a broker with a BAM and an employee assigned
//! through a client group, an importer, a stranger); then bulk rows go
//! straight into the accounts and delegation schemas with server-side
//! `INSERT … SELECT … FROM generate_series` (BN9s with their Luhn check digit
//! computed in SQL), one transaction per service, followed by `VACUUM
//! (ANALYZE)` (as a bulk load would be: statistics for the planner, hint bits
//! and visibility map set, so no autovacuum starts on the fresh rows while
//! the checks run):
//!
//! 1. the small size (1k relationships), then Check p99 cold (questions whose
//!    principals and pairs were never asked: every fact is read from the
//!    services) and warm (the same questions again, five times: every fact
//!    cached);
//! 2. the large size (1M relationships in all, 100k with `--quick`), same
//!    measurement on principals never asked before;
//! 3. ListAccessible paged to the end for the broker with 50k clients (5k
//!    with `--quick`): its BAM, then its employee, assigned to every client
//!    through one client group;
//! 4. the process's resident memory (VmRSS: the services, the gateway and
//!    this harness share the process).
//!
//! Every answer is checked against the decision the bulk data implies.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::gateway::v1::{CheckItem, CheckRequest, Decision, ListAccessibleRequest};
use hdrhistogram::Histogram;
use sea_orm_migration::sea_orm::{ConnectionTrait as _, DatabaseConnection, TransactionTrait as _};
use serde_json::json;
use tokio::sync::Mutex;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::distributed::{BenchDatabases, database_url};
use super::harness::{Business, Embedded, Gateway, Person, Seeder, bench_settings, bn9, channels};
use super::mix::Rng;
use super::{BenchArgs, Report};

/// The 8-digit base of the first bulk business's BN9 (the seeder's real
/// businesses start at 20 000 000, far below).
const BASE: u64 = 30_000_000;

/// Longest a single Check may take (a ListAccessible page: the listing's bound).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// ListAccessible page size (the maximum the API allows).
const LIST_PAGE: i32 = 1000;

/// Returns the principal of bulk person `kind` (0 = BAM, 1 = Editor of
/// RM0001 assigned to a client, 2 = Reader of RM0002 assigned to the client
/// group of all its business's clients, 3 = Editor of RM0001 not assigned)
/// of bulk business `g`.
fn principal(kind: u64, g: u64) -> String {
    format!("person:{:08x}-0000-4000-8000-{g:012x}", 0xB0 + kind)
}

/// Returns the BN9 of bulk business `g`.
fn bulk_bn9(g: u64) -> String {
    bn9(u32::try_from(BASE + g).unwrap_or(u32::MAX))
}

/// The SQL functions computing the same values, created in the loading
/// session's temporary schema (nothing is added to the services' schemas).
/// The BN9's Luhn digit is computed in SQL, not with `ccp_types`, because the
/// bulk rows are made set-based by `generate_series`, never row by row in Rust
/// (every checked answer would disagree if the two BN9s differed).
fn sql_functions() -> Vec<String> {
    let b = format!("({BASE} + g)");
    let terms: Vec<String> = (0..8u32)
        .map(|k| {
            let d = format!("(({b} / {}) % 10)", 10u64.pow(7 - k));
            if k % 2 == 1 {
                format!("(2 * {d} - 9 * ({d} / 5))")
            } else {
                d
            }
        })
        .collect();
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION pg_temp.bn9(g bigint) RETURNS text LANGUAGE sql IMMUTABLE \
             AS $$ SELECT lpad({b}::text, 8, '0') || ((10 - ({}) % 10) % 10)::text $$",
            terms.join(" + ")
        ),
        "CREATE OR REPLACE FUNCTION pg_temp.principal(kind bigint, g bigint) RETURNS text \
         LANGUAGE sql IMMUTABLE AS $$ SELECT 'person:' || lpad(to_hex(176 + kind), 8, '0') \
         || '-0000-4000-8000-' || lpad(to_hex(g), 12, '0') $$"
            .to_owned(),
        "CREATE OR REPLACE FUNCTION pg_temp.group_id(g bigint) RETURNS text LANGUAGE sql \
         IMMUTABLE AS $$ SELECT '000000c0-0000-4000-9000-' || lpad(to_hex(g), 12, '0') $$"
            .to_owned(),
    ]
}

/// A block of bulk businesses `start..start + n` and `rels` relationships
/// among them: relationship `j` runs from provider `j % n` to client
/// `(j % n + 1 + j / n) % n` (local indices), so every provider has about
/// `rels / n` clients, the pairs are distinct and nobody is its own client.
#[derive(Debug, Clone, Copy)]
struct Block {
    start: u64,
    n: u64,
    rels: u64,
}

impl Block {
    /// Returns a block of about `rels / 5` businesses (at least `min_n`).
    fn new(start: u64, rels: u64, min_n: u64) -> Self {
        let mut n = rels.div_ceil(5).max(min_n).max(3);
        while n * (n - 1) < rels {
            n += 1;
        }
        Self { start, n, rels }
    }

    /// Returns the `m`-th client (local index) of provider `p`, if it has one.
    fn client(&self, p: u64, m: u64) -> Option<u64> {
        (m + 2 <= self.n && m * self.n + p < self.rels).then(|| (p + 1 + m) % self.n)
    }

    /// Returns a business of the block that `p` has no relationship with.
    fn unrelated(&self, p: u64) -> Option<u64> {
        (0..self.n - 1)
            .rev()
            .find(|&m| self.client(p, m).is_none())
            .map(|m| (p + 1 + m) % self.n)
    }

    fn bn(&self, local: u64) -> String {
        bulk_bn9(self.start + local)
    }

    fn program(&self, local: u64, reference: u32) -> String {
        format!("{}RM{reference:04}", self.bn(local))
    }
}

/// One Check question and the decision the data implies.
#[derive(Debug, Clone)]
struct Question {
    request: CheckRequest,
    allow: bool,
    /// Who asks about what, e.g. `bam edit client` (latency per kind).
    kind: String,
}

fn q(
    principal: String,
    action: Action,
    resource: String,
    submitted_by: String,
    allow: bool,
) -> Question {
    Question {
        request: CheckRequest {
            principal,
            item: Some(CheckItem {
                action: action as i32,
                resource,
                submitted_by,
            }),
            revision: String::new(),
        },
        allow,
        kind: String::new(),
    }
}

/// Names the question's kind: the person, the action, and whether the
/// resource is its own business's, a client's, or another's.
fn labelled(
    mut question: Question,
    person: &str,
    own: &str,
    clients: &[Option<u64>],
    block: &Block,
) -> Question {
    let item = question.request.item.clone().unwrap_or_default();
    let target = if item.resource.starts_with(own) {
        "own"
    } else if clients
        .iter()
        .flatten()
        .any(|&c| item.resource.starts_with(&block.bn(c)))
    {
        "client"
    } else {
        "unrelated"
    };
    let action = match Action::try_from(item.action) {
        Ok(Action::View) => "view",
        Ok(Action::Edit) => "edit",
        Ok(Action::Manage) => "manage",
        _ => "?",
    };
    let what = if item.resource.len() == 9 {
        "bn9"
    } else {
        "bn15"
    };
    question.kind = format!(
        "{person} {action} {target} {what} {}",
        if question.allow { "allow" } else { "deny" }
    );
    question
}

/// The four questions of bulk business `p` (local index), one per person,
/// each about a different pair, so that in one pass every fact is read once.
fn questions_of(block: &Block, p: u64, variants: u64, stranger: &str) -> Vec<Question> {
    use Action::{Edit, Manage, View};
    let g = block.start + p;
    let own = block.bn(p);
    let v = |kind: u64| (variants >> (2 * kind)) & 3;
    let (c0, c1, c2) = (block.client(p, 0), block.client(p, 1), block.client(p, 2));
    let mut out = Vec::with_capacity(4);
    // The BAM: counts as assigned to every client as Editor (R-AZ-2).
    let bam = principal(0, g);
    let clients = [c0, c1, c2, block.client(p, 3)];
    let l = |question: Question, person: &str| labelled(question, person, &own, &clients, block);
    out.push(l(
        match (v(0), c0) {
            (0, Some(c)) => q(bam, Edit, block.program(c, 1), String::new(), true),
            (1, _) => match block.unrelated(p) {
                Some(u) => q(bam, View, block.program(u, 1), String::new(), false),
                None => q(bam, View, stranger.to_owned(), String::new(), false),
            },
            // A provider never MANAGEs a client (R-AZ-2).
            (2, Some(c)) => q(bam, Manage, block.bn(c), String::new(), false),
            _ => q(bam, Manage, own.clone(), String::new(), true),
        },
        "bam",
    ));
    // Editor of RM0001, assigned to client c1 as Editor.
    let ed = principal(1, g);
    out.push(l(
        match (v(1), c1) {
            (0, Some(c)) => q(ed, View, block.program(c, 2), own.clone(), true),
            (1, Some(c)) => q(ed, Edit, block.program(c, 1), String::new(), true),
            (2, _) => q(ed, Edit, block.program(p, 2), String::new(), false),
            _ => q(ed, Edit, block.program(p, 1), String::new(), true),
        },
        "editor-assigned",
    ));
    // Reader of RM0002, assigned as Reader to the group of all its
    // business's clients.
    let rd = principal(2, g);
    out.push(l(
        match v(2) {
            0 => q(rd, View, block.program(p, 2), String::new(), true),
            1 => q(rd, Edit, block.program(p, 2), String::new(), false),
            2 => q(rd, View, own.clone(), String::new(), true),
            _ => match block.client(p, 3) {
                // A provider always sees what it submitted itself (R-AZ-3).
                Some(c) => q(rd, View, block.program(c, 1), own.clone(), true),
                None => q(rd, View, block.program(p, 1), String::new(), false),
            },
        },
        "reader-group",
    ));
    // Editor of RM0001, assigned to nobody: a related client is refused.
    let un = principal(3, g);
    out.push(l(
        match (v(3), c2) {
            (0, Some(c)) => q(un, View, block.program(c, 1), String::new(), false),
            (1, _) => q(un, View, block.program(p, 1), String::new(), true),
            (2, Some(c)) => q(un, Edit, block.program(c, 1), String::new(), false),
            _ => q(un, Manage, own.clone(), String::new(), false),
        },
        "editor-unassigned",
    ));
    out
}

/// Draws `checks / 4` businesses of the block (all when it is smaller) and
/// returns their questions in a shuffled order.
fn questions(block: &Block, checks: usize, seed: u64, stranger: &str) -> Vec<Question> {
    let mut rng = Rng::new(seed);
    let wanted = (checks.div_ceil(4) as u64).min(block.n);
    let mut chosen: Vec<u64> = if wanted == block.n {
        (0..block.n).collect()
    } else {
        let mut set = HashSet::new();
        while (set.len() as u64) < wanted {
            set.insert(rng.next_u64() % block.n);
        }
        let mut v: Vec<u64> = set.into_iter().collect();
        v.sort_unstable();
        v
    };
    let mut out: Vec<Question> = Vec::with_capacity(chosen.len() * 4);
    for p in chosen.drain(..) {
        out.extend(questions_of(block, p, rng.next_u64(), stranger));
    }
    for i in (1..out.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out.truncate(checks);
    out
}

/// What the seeded (real) part of the dataset is.
struct Seeded {
    broker: Business,
    employee: Person,
    importer: Business,
    stranger: Business,
    group_id: String,
}

async fn seed(seeder: &Seeder) -> anyhow::Result<Seeded> {
    let expire = chrono::Utc::now() + chrono::Duration::days(365);
    let mut broker = seeder.business("scale-broker").await?;
    let employee = seeder.person("scale-broker-emp").await?;
    let program = broker.programs[0].clone();
    seeder
        .join(&mut broker, employee.clone(), &program, Role::Editor)
        .await?;
    let mut importer = seeder.business("scale-importer").await?;
    let member = seeder.person("scale-importer-m").await?;
    let program = importer.programs[0].clone();
    seeder
        .join(&mut importer, member, &program, Role::Editor)
        .await?;
    let stranger = seeder.business("scale-stranger").await?;
    seeder.relate(&broker, &importer, expire).await?;
    let group = seeder
        .client_group(&broker, "All clients", &[&importer])
        .await?;
    seeder
        .assign_group(&broker, &employee, &group, Role::Editor)
        .await?;
    let group_id = group
        .rsplit('/')
        .next()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .with_context(|| format!("unexpected client group name {group}"))?
        .to_string();
    Ok(Seeded {
        broker,
        employee,
        importer,
        stranger,
        group_id,
    })
}

/// Runs statements in one transaction (with the loader's SQL functions).
async fn load(db: &DatabaseConnection, statements: &[String]) -> anyhow::Result<()> {
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL statement_timeout = '900s'")
        .await?;
    for f in sql_functions() {
        txn.execute_unprepared(&f).await?;
    }
    for s in statements {
        txn.execute_unprepared(s)
            .await
            .with_context(|| format!("bulk statement failed: {}", &s[..s.len().min(120)]))?;
    }
    txn.commit().await?;
    db.execute_unprepared("VACUUM (ANALYZE)").await?;
    Ok(())
}

/// The accounts rows of a block: businesses (address and terms copied from
/// the seeded `template` business), two program accounts each, four members
/// each (a BAM and three employees with direct roles).
fn accounts_rows(block: &Block, template: &str) -> (Vec<String>, u64) {
    let (s, e) = (block.start, block.start + block.n - 1);
    let statements = vec![
        format!(
            "INSERT INTO businesses (bn9, legal_name, address_json, register_time, registered_by, \
             terms_version, terms_accept_time) \
             SELECT pg_temp.bn9(g), 'Bulk business ' || g, t.address_json, t.register_time, \
             pg_temp.principal(0, g), t.terms_version, t.terms_accept_time \
             FROM generate_series({s}::bigint, {e}::bigint) AS g \
             CROSS JOIN (SELECT * FROM businesses WHERE bn9 = '{template}') AS t"
        ),
        format!(
            "INSERT INTO program_accounts (bn9, reference, display_name, link_time) \
             SELECT pg_temp.bn9(g), r.reference, 'Bulk ' || r.reference, now() \
             FROM generate_series({s}::bigint, {e}::bigint) AS g \
             CROSS JOIN (VALUES ('RM0001'), ('RM0002')) AS r(reference)"
        ),
        format!(
            "INSERT INTO members (bn9, principal, kind, display_name, business_manager, join_time, \
             version) \
             SELECT pg_temp.bn9(g), pg_temp.principal(k, g), t.kind, t.display_name, k = 0, \
             now(), 1 \
             FROM generate_series({s}::bigint, {e}::bigint) AS g \
             CROSS JOIN generate_series(0::bigint, 3::bigint) AS k \
             CROSS JOIN (SELECT kind, display_name FROM members WHERE bn9 = '{template}' \
                         AND business_manager LIMIT 1) AS t"
        ),
        format!(
            "INSERT INTO member_roles (bn9, principal, reference, role) \
             SELECT pg_temp.bn9(g), pg_temp.principal(r.k, g), r.reference, r.role \
             FROM generate_series({s}::bigint, {e}::bigint) AS g \
             CROSS JOIN (VALUES (1::bigint, 'RM0001', {editor}), (2::bigint, 'RM0002', {reader}), \
                                (3::bigint, 'RM0001', {editor})) AS r(k, reference, role)",
            editor = Role::Editor as i32,
            reader = Role::Reader as i32,
        ),
    ];
    (statements, block.n * (1 + 2 + 4 + 3))
}

/// The delegation rows of a block: the businesses as registered, its
/// relationships (level, scope and visibility copied from the seeded
/// `template` pair: business level, visible to provider and client), each
/// provider's kind-1 person assigned to its client number 1, and each
/// provider's client group of all its clients with its kind-2 person
/// assigned to it (many groups, as a real dataset has: with one group only,
/// PostgreSQL's statistics make it scan that group's clients on every
/// assignment lookup — see BENCHMARKS.md).
fn delegation_rows(block: &Block, template: (&str, &str), now_us: i64) -> (Vec<String>, u64) {
    let (s, e, n, r) = (block.start, block.start + block.n - 1, block.n, block.rels);
    let start_us = now_us - 86_400_000_000;
    let expire_us = now_us + 365 * 86_400_000_000;
    let (tp, tc) = template;
    // Businesses with at least one client (relationship j = p exists).
    let providers = r.min(n);
    let assigned = if n >= 3 {
        r.saturating_sub(n).min(n)
    } else {
        0
    };
    let mut statements = vec![
        format!(
            "INSERT INTO registered_businesses (bn9, register_us) \
             SELECT pg_temp.bn9(g), {now_us} FROM generate_series({s}::bigint, {e}::bigint) AS g \
             ON CONFLICT (bn9) DO NOTHING"
        ),
        format!(
            "INSERT INTO relationships (id, provider, client, request_id, level, program_accounts, \
             visibility, start_us, expire_us, end_us, end_reason, ended_by, end_note, update_us, \
             version, remind_30_us, remind_7_us, remind_1_us) \
             SELECT gen_random_uuid()::text, pg_temp.bn9({s} + j % {n}), \
             pg_temp.bn9({s} + (j % {n} + 1 + j / {n}) % {n}), gen_random_uuid()::text, \
             t.level, t.program_accounts, t.visibility, {start_us}, {expire_us}, NULL, NULL, '', \
             '', {start_us}, 1, NULL, NULL, NULL \
             FROM generate_series(0::bigint, {last}::bigint) AS j \
             CROSS JOIN (SELECT level, program_accounts, visibility FROM relationships \
                         WHERE provider = '{tp}' AND client = '{tc}' LIMIT 1) AS t",
            last = r.saturating_sub(1),
        ),
        format!(
            "INSERT INTO assignments (id, provider, assignee, target, client, group_id, role, \
             create_us, creator) \
             SELECT gen_random_uuid()::text, pg_temp.bn9({s} + p), pg_temp.principal(1, {s} + p), \
             'client:' || pg_temp.bn9({s} + (p + 2) % {n}), pg_temp.bn9({s} + (p + 2) % {n}), \
             NULL, 'EDITOR', {now_us}, pg_temp.principal(0, {s} + p) \
             FROM generate_series(0::bigint, {last}::bigint) AS p WHERE {n} >= 3 AND {n} + p < {r}",
            last = n - 1,
        ),
        // Each provider's client group of all its clients, and its kind-2
        // person (Reader of RM0002) assigned to that group as Reader.
        format!(
            "INSERT INTO client_groups (id, provider, display_name, name_key, create_us, \
             update_us, delete_us, version) \
             SELECT pg_temp.group_id({s} + p), pg_temp.bn9({s} + p), 'Clients', 'clients', \
             {now_us}, {now_us}, NULL, 1 \
             FROM generate_series(0::bigint, {last}::bigint) AS p",
            last = providers.saturating_sub(1),
        ),
        format!(
            "INSERT INTO client_group_clients (group_id, client) \
             SELECT pg_temp.group_id({s} + j % {n}), \
             pg_temp.bn9({s} + (j % {n} + 1 + j / {n}) % {n}) \
             FROM generate_series(0::bigint, {last}::bigint) AS j",
            last = r.saturating_sub(1),
        ),
        format!(
            "INSERT INTO assignments (id, provider, assignee, target, client, group_id, role, \
             create_us, creator) \
             SELECT gen_random_uuid()::text, pg_temp.bn9({s} + p), pg_temp.principal(2, {s} + p), \
             'group:' || pg_temp.group_id({s} + p), NULL, pg_temp.group_id({s} + p), 'READER', \
             {now_us}, pg_temp.principal(0, {s} + p) \
             FROM generate_series(0::bigint, {last}::bigint) AS p",
            last = providers.saturating_sub(1),
        ),
    ];
    if r == 0 {
        statements.truncate(1);
        return (statements, block.n);
    }
    (statements, block.n + r + assigned + 2 * providers + r)
}

/// The broker's relationships with the first `k` businesses of the block
/// and those clients added to its client group.
fn broker_rows(block: &Block, k: u64, seeded: &Seeded, now_us: i64) -> (Vec<String>, u64) {
    let s = block.start;
    let start_us = now_us - 86_400_000_000;
    let expire_us = now_us + 365 * 86_400_000_000;
    let (bp, bc) = (&seeded.broker.bn9, &seeded.importer.bn9);
    let statements = vec![
        format!(
            "INSERT INTO relationships (id, provider, client, request_id, level, program_accounts, \
             visibility, start_us, expire_us, end_us, end_reason, ended_by, end_note, update_us, \
             version, remind_30_us, remind_7_us, remind_1_us) \
             SELECT gen_random_uuid()::text, '{bp}', pg_temp.bn9({s} + i), gen_random_uuid()::text, \
             t.level, t.program_accounts, t.visibility, {start_us}, {expire_us}, NULL, NULL, '', \
             '', {start_us}, 1, NULL, NULL, NULL \
             FROM generate_series(0::bigint, {last}::bigint) AS i \
             CROSS JOIN (SELECT level, program_accounts, visibility FROM relationships \
                         WHERE provider = '{bp}' AND client = '{bc}' LIMIT 1) AS t",
            last = k - 1,
        ),
        format!(
            "INSERT INTO client_group_clients (group_id, client) \
             SELECT '{}', pg_temp.bn9({s} + i) FROM generate_series(0::bigint, {last}::bigint) AS i",
            seeded.group_id,
            last = k - 1,
        ),
    ];
    (statements, 2 * k)
}

/// Loads one size: accounts and delegation in parallel (one transaction
/// each, then VACUUM (ANALYZE)); returns the wall time and the rows inserted.
async fn load_size(
    dbs: &Dbs,
    block: &Block,
    broker: Option<(u64, &Seeded)>,
    seeded: &Seeded,
) -> anyhow::Result<(f64, u64)> {
    let now_us = chrono::Utc::now().timestamp_micros();
    let (acc, acc_rows) = accounts_rows(block, &seeded.broker.bn9);
    let (mut del, mut del_rows) =
        delegation_rows(block, (&seeded.broker.bn9, &seeded.importer.bn9), now_us);
    if let Some((k, seeded)) = broker {
        let (extra, rows) = broker_rows(block, k, seeded, now_us);
        del.extend(extra);
        del_rows += rows;
    }
    let started = Instant::now();
    let (a, d) = tokio::join!(load(&dbs.accounts, &acc), load(&dbs.delegation, &del));
    a.context("loading accounts")?;
    d.context("loading delegation")?;
    Ok((started.elapsed().as_secs_f64(), acc_rows + del_rows))
}

struct Dbs {
    accounts: DatabaseConnection,
    delegation: DatabaseConnection,
}

/// Returns the size of the accounts and delegation databases in MiB.
async fn database_mb(dbs: &Dbs) -> Option<f64> {
    use sea_orm_migration::sea_orm::{QueryResult, Statement};
    let mut total = 0.0;
    for db in [&dbs.accounts, &dbs.delegation] {
        let row: QueryResult = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT pg_database_size(current_database())::bigint AS bytes",
            ))
            .await
            .ok()??;
        let bytes: i64 = row.try_get("", "bytes").ok()?;
        total += bytes as f64 / (1024.0 * 1024.0);
    }
    Some(total)
}

/// Returns this process's resident set size in MiB (Linux), if known.
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The gateway as an internal caller sees it.
#[derive(Clone)]
struct Caller {
    channels: Arc<Vec<Channel>>,
    token: MetadataValue<Ascii>,
}

impl Caller {
    fn request<T>(&self, body: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        request
            .metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, self.token.clone());
        request.set_timeout(CALL_TIMEOUT);
        request
    }
}

/// How many times the warm pass asks each question (the cold pass can ask
/// each only once; the warm one gets more samples for its p99).
const WARM_ROUNDS: usize = 5;

/// Returns the questions of a warm pass: the cold pass's, [`WARM_ROUNDS`] times.
fn warm(questions: &[Question]) -> Arc<Vec<Question>> {
    Arc::new(
        std::iter::repeat_n(questions, WARM_ROUNDS)
            .flatten()
            .cloned()
            .collect(),
    )
}

/// What one pass over the questions measured.
#[derive(Debug, Clone, Default)]
struct Pass {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    seconds: f64,
    unexpected: u64,
    errors: u64,
    answered: u64,
    /// Per question kind: (kind, count, p50 ms, p90 ms, max ms), slowest p90 first.
    by_kind: Vec<(String, u64, f64, f64, f64)>,
}

/// Asks every question once with `workers` callers; records each latency
/// and compares each answer with the expected decision.
async fn pass(caller: &Caller, questions: &Arc<Vec<Question>>, workers: usize) -> Pass {
    let next = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // 1 µs .. 60 s at 3 significant digits: constant, valid bounds.
    let new_hist =
        || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let hist = Arc::new(Mutex::new((
        new_hist(),
        std::collections::BTreeMap::<String, Histogram<u64>>::new(),
    )));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers.max(1) {
        let (caller, questions, next) = (caller.clone(), questions.clone(), next.clone());
        let (unexpected, errors, hist) = (unexpected.clone(), errors.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let channel = caller.channels[w % caller.channels.len()].clone();
            let mut client = AuthorizationClient::new(channel);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(question) = questions.get(i) else {
                    break;
                };
                let t0 = Instant::now();
                let answer = client.check(caller.request(question.request.clone())).await;
                let took = t0.elapsed();
                match answer {
                    Ok(r) => {
                        let allowed = r.get_ref().decision == Decision::Allow as i32;
                        if allowed != question.allow {
                            let n = unexpected.fetch_add(1, Ordering::Relaxed);
                            if n < 5 {
                                tracing::warn!(question = ?question.request, expected = question.allow, answer = ?r.get_ref(), "unexpected decision");
                            }
                        }
                        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                        let mut h = hist.lock().await;
                        let _ = h.0.record(micros);
                        let kind = h.1.entry(question.kind.clone()).or_insert_with(|| {
                            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                                .expect("valid histogram bounds")
                        });
                        let _ = kind.record(micros);
                    }
                    Err(status) => {
                        let n = errors.fetch_add(1, Ordering::Relaxed);
                        if n < 5 {
                            tracing::warn!(%status, "check failed");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let guard = hist.lock().await;
    let (hist, kinds) = (&guard.0, &guard.1);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let mut by_kind: Vec<(String, u64, f64, f64, f64)> = kinds
        .iter()
        .map(|(k, h)| {
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            (
                k.clone(),
                h.len(),
                ms(0.5),
                ms(0.9),
                h.max() as f64 / 1000.0,
            )
        })
        .collect();
    by_kind.sort_by(|a, b| b.3.total_cmp(&a.3));
    Pass {
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1000.0,
        seconds,
        unexpected: unexpected.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        answered: hist.len(),
        by_kind,
    }
}

/// What paging one principal's ListAccessible to the end measured.
#[derive(Debug, Clone, Default)]
struct Listing {
    ms: f64,
    pages: u64,
    resources: u64,
    distinct: u64,
    first_page_ms: f64,
    complete: bool,
    /// The status of the page that failed, if one did.
    error: Option<String>,
}

impl Listing {
    /// Returns true when it reached the end with exactly the `expected`
    /// distinct resources.
    fn ok(&self, expected: u64) -> bool {
        self.complete && self.resources == expected && self.distinct == expected
    }
}

/// Pages ListAccessible (VIEW) for `principal` to the end, bounded in pages
/// and time; a failed page ends the listing and is recorded.
async fn list(caller: &Caller, principal: &str, max_pages: u64, deadline: Duration) -> Listing {
    let mut client = AuthorizationClient::new(caller.channels[0].clone());
    let started = Instant::now();
    let mut token = String::new();
    let mut out = Listing::default();
    // Hashes, not the strings: the listing's own memory stays small (RSS).
    let mut seen: HashSet<u64> = HashSet::new();
    while out.pages < max_pages && started.elapsed() < deadline {
        let page = match client
            .list_accessible({
                // A page may take long (the whole listing is bounded instead).
                let mut request = caller.request(ListAccessibleRequest {
                    principal: principal.to_owned(),
                    action: Action::View as i32,
                    page_size: LIST_PAGE,
                    page_token: token.clone(),
                    revision: String::new(),
                });
                let left = deadline.saturating_sub(started.elapsed());
                request.set_timeout(left.max(CALL_TIMEOUT));
                request
            })
            .await
        {
            Ok(page) => page.into_inner(),
            Err(status) => {
                tracing::warn!(%status, page = out.pages + 1, "ListAccessible failed");
                out.error = Some(format!(
                    "page {}: {:?}: {}",
                    out.pages + 1,
                    status.code(),
                    status.message()
                ));
                break;
            }
        };
        out.pages += 1;
        if out.pages == 1 {
            out.first_page_ms = started.elapsed().as_secs_f64() * 1000.0;
        }
        out.resources += page.resources.len() as u64;
        seen.extend(page.resources.iter().map(|r| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&r.resource, &mut h);
            std::hash::Hasher::finish(&h)
        }));
        if page.next_page_token.is_empty() {
            out.complete = true;
            break;
        }
        token = page.next_page_token;
    }
    out.ms = started.elapsed().as_secs_f64() * 1000.0;
    out.distinct = seen.len() as u64;
    out
}

/// Returns `{kind: {n, p50_ms, p90_ms, max_ms}}` of a pass.
fn kinds_json(pass: &Pass) -> serde_json::Value {
    pass.by_kind
        .iter()
        .map(|(k, n, p50, p90, max)| {
            (
                k.clone(),
                json!({"n": n, "p50_ms": p50, "p90_ms": p90, "max_ms": max}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn listing_note(who: &str, l: &Listing, expected: u64) -> String {
    let outcome = match &l.error {
        Some(err) => format!("FAILED at {err}"),
        None if !l.complete => "stopped at the page or time bound".to_owned(),
        None => format!("{:.0} ms", l.ms),
    };
    format!(
        "ListAccessible (VIEW, pages of {LIST_PAGE}) for {who}: {outcome}; {} pages, {} resources \
         (expected {expected}), first page {:.0} ms",
        l.pages, l.resources, l.first_page_ms
    )
}

/// Runs the scenario.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let url = database_url(args.database_url.as_deref()).ok_or_else(|| {
        anyhow::anyhow!(
            "`ccp bench scale` needs PostgreSQL: pass --database-url \
             postgres://USER@HOST:PORT/postgres or set CCP_TEST_DATABASE_URL (or \
             CCP_BENCH_DATABASE_URL), e.g. CCP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres; \
             the run creates a database per service there and drops them at the end"
        )
    })?;
    let dbs = BenchDatabases::create(&url, &["identity", "accounts", "delegation"]).await?;
    let result = run_on(args, &dbs).await;
    // Drop the run's databases, also when it failed.
    let dropped = dbs.drop_all().await;
    let report = result?;
    dropped?;
    Ok(report)
}

async fn run_on(args: &BenchArgs, dbs: &BenchDatabases) -> anyhow::Result<Report> {
    let mut settings = bench_settings();
    settings.identity.database = dbs.settings("identity")?;
    settings.accounts.database = dbs.settings("accounts")?;
    settings.delegation.database = dbs.settings("delegation")?;
    settings.identity.key_encryption_key =
        secrecy::SecretString::from(ccp_platform::auth::InternalTokens::generate_key());
    let embedded = Embedded::start(settings, ServiceContext::in_memory(Clock::system())).await?;
    let result = async {
        let bulk = Dbs {
            accounts: ccp_platform::db::connect(&dbs.settings("accounts")?).await?,
            delegation: ccp_platform::db::connect(&dbs.settings("delegation")?).await?,
        };
        let report = measure(args, &embedded, &bulk).await;
        let _ = bulk.accounts.close().await;
        let _ = bulk.delegation.close().await;
        report
    }
    .await;
    let stopped = embedded.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn measure(args: &BenchArgs, embedded: &Embedded, bulk: &Dbs) -> anyhow::Result<Report> {
    let run_started = Instant::now();
    let seeder = Seeder::new(embedded).await?;
    let seeded = seed(&seeder).await?;
    let seed_s = run_started.elapsed().as_secs_f64();
    let stranger = seeded.stranger.programs[0].clone();

    let small = Block::new(0, args.small(), 3);
    let broker_clients = args.broker_clients();
    let large_rels = args
        .large()
        .saturating_sub(args.small())
        .saturating_sub(broker_clients);
    // About one business per 5 relationships in all (200k for 1M), and at
    // least one per client of the broker.
    let large = Block::new(
        small.n,
        large_rels,
        (args.large() / 5)
            .saturating_sub(small.n)
            .max(broker_clients),
    );
    let broker_clients = broker_clients.min(large.n);

    // The process before the measured gateway replica starts: the services
    // (seeded, the small size not yet loaded) and this harness.
    let rss_baseline = rss_mb();
    let mut gateway_settings = embedded.settings.clone();
    if let Some(limit) = args.gateway_max_message_bytes {
        gateway_settings.gateway.facts_max_message_bytes = limit;
    }
    let max_message_bytes = gateway_settings.gateway.facts_max_message_bytes;
    let gateway = Gateway::start(
        embedded.suite.context(),
        &gateway_settings,
        embedded.suite.endpoints(),
    )
    .await?;
    let caller = Caller {
        channels: Arc::new(channels(gateway.addr, args.connections()).await?),
        token: seeder.internal().mint("service:bench").parse()?,
    };
    let workers = args.concurrency();
    // Open the measured gateway's channels to accounts and delegation with a
    // question nobody else asks (the stranger's BAM about the importer: no
    // relationship), so the first cold Check does not pay the connections.
    let opening = Arc::new(vec![q(
        seeded.stranger.bam.principal.clone(),
        Action::View,
        seeded.importer.programs[0].clone(),
        String::new(),
        false,
    )]);
    let opened = pass(&caller, &opening, 1).await;

    // Small size.
    let (load_small_s, rows_small) = load_size(bulk, &small, None, &seeded).await?;
    let qs_small = Arc::new(questions(&small, args.checks(), 0x5CA1E, &stranger));
    let small_cold = pass(&caller, &qs_small, workers).await;
    let small_warm = pass(&caller, &warm(&qs_small), workers).await;

    // Large size: new businesses, relationships and people, plus the
    // broker's clients; questions only about people never asked before.
    let (load_large_s, rows_large) =
        load_size(bulk, &large, Some((broker_clients, &seeded)), &seeded).await?;
    let db_mb = database_mb(bulk).await;
    let qs_large = Arc::new(questions(&large, args.checks(), 0x1A26E, &stranger));
    let large_cold = pass(&caller, &qs_large, workers).await;
    let large_warm = pass(&caller, &warm(&qs_large), workers).await;
    let rss_checks = rss_mb();

    // ListAccessible, paged to the end. The broker's BAM acts for every
    // client (through ListClients, paged): its own business (BN9 + 2
    // programs), then each client's BN9 and its 2 program accounts. The
    // broker's employee (Editor of RM0001, assigned to every client through
    // the one client group): its business and program, then the same.
    let per_client = 3;
    let expected_bam = 3 + per_client * (broker_clients + 1);
    let expected_employee = 2 + per_client * (broker_clients + 1);
    let max_pages = expected_bam / LIST_PAGE as u64 + 20;
    let deadline = if args.quick {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(600)
    };
    let bam = list(&caller, &seeded.broker.bam.principal, max_pages, deadline).await;
    let employee = list(&caller, &seeded.employee.principal, max_pages, deadline).await;
    let rss = rss_mb();
    let facts = gateway.facts.stats();
    gateway.stop().await?;

    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let unexpected = opened.unexpected
        + small_cold.unexpected
        + small_warm.unexpected
        + large_cold.unexpected
        + large_warm.unexpected
        + u64::from(bam.complete && !bam.ok(expected_bam))
        + u64::from(employee.complete && !employee.ok(expected_employee));
    let errors = opened.errors
        + small_cold.errors
        + small_warm.errors
        + large_cold.errors
        + large_warm.errors
        + u64::from(!bam.complete)
        // The employee's listing failing with an error is reported on its own
        // (`employee_list_error`); stopping short without one is an error here.
        + u64::from(!employee.complete && employee.error.is_none());
    let small_total = small.rels;
    let large_total = small.rels + large.rels + broker_clients + 1;
    let businesses_small = small.n + 3;
    let businesses_large = small.n + large.n + 3;
    let r1 = |x: Option<f64>| x.map(|v| (v * 10.0).round() / 10.0);
    let json = json!({
        "scenario": "scale",
        "quick": args.quick,
        "small": small_total,
        "large": large_total,
        "businesses_small": businesses_small,
        "businesses_large": businesses_large,
        "checks": qs_small.len(),
        "checks_large": qs_large.len(),
        "checks_warm": small_warm.answered,
        "concurrency": workers,
        "seed_s": seed_s,
        "load_s_small": load_small_s,
        "load_s_large": load_large_s,
        "rows_small": rows_small,
        "rows_large": rows_large,
        "rows_per_s_large": ratio(rows_large as f64, load_large_s),
        "p99_ms_small": small_cold.p99_ms,
        "p99_ms_large": large_cold.p99_ms,
        "p99_ratio": ratio(large_cold.p99_ms, small_cold.p99_ms),
        "p50_ms_small": small_cold.p50_ms,
        "p90_ms_small": small_cold.p90_ms,
        "p90_ms_large": large_cold.p90_ms,
        "db_mb_large": db_mb,
        "cold_by_kind_small": kinds_json(&small_cold),
        "cold_by_kind_large": kinds_json(&large_cold),
        "p50_ms_large": large_cold.p50_ms,
        "max_ms_small": small_cold.max_ms,
        "max_ms_large": large_cold.max_ms,
    });
    let more = json!({
        "p99_ms_small_warm": small_warm.p99_ms,
        "p99_ms_large_warm": large_warm.p99_ms,
        "p99_ratio_warm": ratio(large_warm.p99_ms, small_warm.p99_ms),
        "p50_ms_small_warm": small_warm.p50_ms,
        "p50_ms_large_warm": large_warm.p50_ms,
    });
    let list = json!({
        "broker_clients": broker_clients + 1,
        "list_ms": bam.complete.then_some(bam.ms),
        "list_pages": bam.pages,
        "list_resources": bam.resources,
        "list_expected": expected_bam,
        "list_first_page_ms": bam.first_page_ms,
        "list_error": bam.error,
        "employee_list_ok": employee.ok(expected_employee),
        "employee_list_ms": employee.complete.then_some(employee.ms),
        "employee_list_pages": employee.pages,
        "employee_list_resources": employee.resources,
        "employee_list_expected": expected_employee,
        "employee_list_first_page_ms": employee.first_page_ms,
        "employee_list_error": employee.error,
        "gateway_max_message_bytes": max_message_bytes,
        "rss_mb": r1(rss),
        "rss_baseline_mb": r1(rss_baseline),
        "rss_after_checks_mb": r1(rss_checks),
        "rss_delta_mb": r1(rss.zip(rss_baseline).map(|(a, b)| a - b)),
        "facts_hits": facts.hits,
        "facts_misses": facts.misses,
        "unexpected_decisions": unexpected,
        "errors": errors,
        "pass_s_small_cold": small_cold.seconds,
        "pass_s_large_cold": large_cold.seconds,
        "total_s": run_started.elapsed().as_secs_f64(),
    });
    let mut json = json;
    if let Some(object) = json.as_object_mut() {
        for part in [more, list] {
            if let serde_json::Value::Object(fields) = part {
                object.extend(fields);
            }
        }
    }
    let row = |name: &str, rels: u64, businesses: u64, load: f64, cold: &Pass, warm: &Pass| {
        vec![
            name.to_owned(),
            rels.to_string(),
            businesses.to_string(),
            format!("{load:.1}"),
            cold.answered.to_string(),
            format!("{:.3}", cold.p50_ms),
            format!("{:.3}", cold.p99_ms),
            format!("{:.3}", warm.p50_ms),
            format!("{:.3}", warm.p99_ms),
            (cold.unexpected + warm.unexpected).to_string(),
            (cold.errors + warm.errors).to_string(),
        ]
    };
    Ok(Report {
        headers: vec![
            "size",
            "relationships",
            "businesses",
            "load s",
            "checks",
            "cold p50 ms",
            "cold p99 ms",
            "warm p50 ms",
            "warm p99 ms",
            "unexpected",
            "errors",
        ],
        rows: vec![
            row(
                "small",
                small_total,
                businesses_small,
                load_small_s,
                &small_cold,
                &small_warm,
            ),
            row(
                "large",
                large_total,
                businesses_large,
                load_large_s,
                &large_cold,
                &large_warm,
            ),
        ],
        notes: vec![
            format!(
                "p99 ratio large/small: cold {:.2}, warm {:.2} (DESIGN.md §5: within 20%, i.e. ≤ 1.20)",
                ratio(large_cold.p99_ms, small_cold.p99_ms),
                ratio(large_warm.p99_ms, small_warm.p99_ms)
            ),
            listing_note("the broker's BAM", &bam, expected_bam),
            listing_note(
                "the broker's employee (assigned through one client group)",
                &employee,
                expected_employee,
            ),
            format!(
                "bulk load: small {rows_small} rows in {load_small_s:.1} s, large {rows_large} rows in {load_large_s:.1} s ({:.0} rows/s, incl. VACUUM ANALYZE); databases {:.0} MiB",
                ratio(rows_large as f64, load_large_s),
                db_mb.unwrap_or(0.0)
            ),
            format!(
                "resident memory (whole process: services, gateway, harness): {:.0} MiB at the end, {:.0} MiB after the checks, {:.0} MiB before the measured gateway started",
                rss.unwrap_or(0.0),
                rss_checks.unwrap_or(0.0),
                rss_baseline.unwrap_or(0.0)
            ),
        ],
        json,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_block_relates_distinct_pairs_and_never_a_business_to_itself() {
        for (rels, min_n) in [(1000, 3), (20, 3), (7, 5), (12, 3)] {
            let b = Block::new(0, rels, min_n);
            let mut pairs = HashSet::new();
            for j in 0..rels {
                let (p, c) = (j % b.n, (j % b.n + 1 + j / b.n) % b.n);
                assert_ne!(p, c);
                assert!(pairs.insert((p, c)));
            }
            let from_clients: usize = (0..b.n)
                .map(|p| (0..b.n).filter(|&m| b.client(p, m).is_some()).count())
                .sum();
            assert_eq!(from_clients as u64, rels);
            for p in 0..b.n {
                if let Some(u) = b.unrelated(p) {
                    assert!(!pairs.contains(&(p, u)) && u != p);
                }
            }
        }
    }

    #[test]
    fn every_question_of_a_pass_uses_its_own_principal() {
        let b = Block::new(0, 1000, 3);
        let qs = questions(&b, 800, 1, "123456782RM0001");
        assert_eq!(qs.len(), 800);
        let principals: HashSet<&str> = qs.iter().map(|q| q.request.principal.as_str()).collect();
        assert_eq!(principals.len(), 800);
        let allows = qs.iter().filter(|q| q.allow).count();
        assert!(allows > 200 && allows < 600, "{allows}");
    }

    #[test]
    fn bulk_principals_parse() {
        let p: ccp_platform::auth::Principal = principal(3, 199_999).parse().unwrap();
        assert_eq!(p.to_string(), principal(3, 199_999));
    }
}
