//! The bulk data of `ccp bench scale`: blocks of businesses and the
//! relationships among them, the Check questions with the decision the data
//! implies, the seeded principals, and the set-based SQL that loads them.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context as _;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::gateway::v1::{CheckItem, CheckRequest};
use sea_orm_migration::sea_orm::{ConnectionTrait as _, DatabaseConnection, TransactionTrait as _};

use crate::bench::harness::{Business, Person, Seeder, bn9};
use crate::bench::mix::Rng;

/// The 8-digit base of the first bulk business's BN9 (the seeder's real
/// businesses start at 20 000 000, far below).
pub(super) const BASE: u64 = 30_000_000;

/// Returns the principal of bulk person `kind` (0 = BAM, 1 = Editor of
/// RM0001 assigned to a client, 2 = Reader of RM0002 assigned to the client
/// group of all its business's clients, 3 = Editor of RM0001 not assigned)
/// of bulk business `g`.
pub(super) fn principal(kind: u64, g: u64) -> String {
    format!("person:{:08x}-0000-4000-8000-{g:012x}", 0xB0 + kind)
}

/// Returns the BN9 of bulk business `g`.
pub(super) fn bulk_bn9(g: u64) -> String {
    bn9(u32::try_from(BASE + g).unwrap_or(u32::MAX))
}

/// The SQL functions computing the same values, created in the loading
/// session's temporary schema (nothing is added to the services' schemas).
/// The BN9's Luhn digit is computed in SQL, not with `ccp_types`, because the
/// bulk rows are made set-based by `generate_series`, never row by row in Rust
/// (every checked answer would disagree if the two BN9s differed).
pub(super) fn sql_functions() -> Vec<String> {
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
pub(super) struct Block {
    pub(super) start: u64,
    pub(super) n: u64,
    pub(super) rels: u64,
}

impl Block {
    /// Returns a block of about `rels / 5` businesses (at least `min_n`).
    pub(super) fn new(start: u64, rels: u64, min_n: u64) -> Self {
        let mut n = rels.div_ceil(5).max(min_n).max(3);
        while n * (n - 1) < rels {
            n += 1;
        }
        Self { start, n, rels }
    }

    /// Returns the `m`-th client (local index) of provider `p`, if it has one.
    pub(super) fn client(&self, p: u64, m: u64) -> Option<u64> {
        (m + 2 <= self.n && m * self.n + p < self.rels).then(|| (p + 1 + m) % self.n)
    }

    /// Returns a business of the block that `p` has no relationship with.
    pub(super) fn unrelated(&self, p: u64) -> Option<u64> {
        (0..self.n - 1)
            .rev()
            .find(|&m| self.client(p, m).is_none())
            .map(|m| (p + 1 + m) % self.n)
    }

    pub(super) fn bn(&self, local: u64) -> String {
        bulk_bn9(self.start + local)
    }

    pub(super) fn program(&self, local: u64, reference: u32) -> String {
        format!("{}RM{reference:04}", self.bn(local))
    }
}

/// One Check question and the decision the data implies.
#[derive(Debug, Clone)]
pub(super) struct Question {
    pub(super) request: CheckRequest,
    pub(super) allow: bool,
    /// Who asks about what, e.g. `bam edit client` (latency per kind).
    pub(super) kind: String,
}

pub(super) fn q(
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
pub(super) fn labelled(
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
pub(super) fn questions_of(block: &Block, p: u64, variants: u64, stranger: &str) -> Vec<Question> {
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

/// Draws `wanted` distinct businesses of the block (all when it is smaller),
/// in index order; [`questions`] with the same seed draws the same ones.
pub(super) fn draw(block: &Block, wanted: u64, rng: &mut Rng) -> Vec<u64> {
    let wanted = wanted.min(block.n);
    if wanted == block.n {
        return (0..block.n).collect();
    }
    let mut set = HashSet::new();
    while (set.len() as u64) < wanted {
        set.insert(rng.next_u64() % block.n);
    }
    let mut v: Vec<u64> = set.into_iter().collect();
    v.sort_unstable();
    v
}

/// Draws `checks / 4` businesses of the block (all when it is smaller) and
/// returns their questions in a shuffled order.
pub(super) fn questions(block: &Block, checks: usize, seed: u64, stranger: &str) -> Vec<Question> {
    let mut rng = Rng::new(seed);
    let mut chosen = draw(block, checks.div_ceil(4) as u64, &mut rng);
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
pub(super) struct Seeded {
    pub(super) broker: Business,
    pub(super) employee: Person,
    pub(super) importer: Business,
    pub(super) stranger: Business,
    pub(super) group_id: String,
}

pub(super) async fn seed(seeder: &Seeder) -> anyhow::Result<Seeded> {
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
pub(super) async fn load(db: &DatabaseConnection, statements: &[String]) -> anyhow::Result<()> {
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
pub(super) fn accounts_rows(block: &Block, template: &str) -> (Vec<String>, u64) {
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
pub(super) fn delegation_rows(
    block: &Block,
    template: (&str, &str),
    now_us: i64,
) -> (Vec<String>, u64) {
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
pub(super) fn broker_rows(
    block: &Block,
    k: u64,
    seeded: &Seeded,
    now_us: i64,
) -> (Vec<String>, u64) {
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
pub(super) async fn load_size(
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

pub(super) struct Dbs {
    pub(super) accounts: DatabaseConnection,
    pub(super) delegation: DatabaseConnection,
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
