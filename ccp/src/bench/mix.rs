//! The request mix of the `check` scenario: questions a broker system or
//! the portal asks, over the seeded dataset. Principals and, per principal,
//! its questions are drawn from a Zipf law (the discrete Pareto: a few busy
//! principals ask most questions), deterministic from a seed; about a fifth
//! of the questions are expected denials (role too low, no role, not
//! assigned, no relationship, a stranger's accounts).

use ccp_proto::common::v1::Action;
use ccp_proto::gateway::v1::{CheckItem, CheckRequest};

use super::harness::Dataset;

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Returns a generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a uniform number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws ranks 0..n with probability ∝ 1/(rank+1)^s.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Returns the law over `n` ranks with exponent `s`.
    pub fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf = Vec::with_capacity(n.max(1));
        for k in 0..n.max(1) {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for v in &mut cdf {
            *v /= acc;
        }
        Self { cdf }
    }

    /// Draws a rank.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// One question and whether the policy should allow it.
#[derive(Debug, Clone)]
pub struct Question {
    /// The request.
    pub request: CheckRequest,
    /// The expected decision (for the report: the share of denials).
    pub expect_allow: bool,
}

fn q(principal: &str, action: Action, resource: &str, submitted_by: &str, allow: bool) -> Question {
    Question {
        request: CheckRequest {
            principal: principal.to_owned(),
            item: Some(CheckItem {
                action: action as i32,
                resource: resource.to_owned(),
                submitted_by: submitted_by.to_owned(),
            }),
            revision: String::new(),
        },
        expect_allow: allow,
    }
}

/// Returns, per principal, the questions it asks.
pub fn questions_by_principal(data: &Dataset) -> Vec<Vec<Question>> {
    use Action::{Edit, Manage, View};
    let mut out = Vec::new();
    let stranger = &data.stranger.programs[0];
    let broker = &data.broker;
    // Broker employees: the busiest principals (a broker's systems).
    for (e, member) in broker.members.iter().enumerate() {
        let p = &member.person.principal;
        let mut qs = Vec::new();
        for &(ae, c) in &data.assignments {
            if ae != e {
                continue;
            }
            let client = &data.clients[c];
            qs.push(q(p, View, &client.programs[0], &broker.bn9, true));
            qs.push(q(p, View, &client.programs[1], &broker.bn9, true));
            qs.push(q(p, View, &client.bn9, "", true));
            qs.push(q(p, Manage, &client.bn9, "", false));
        }
        qs.push(q(p, View, &member.program, "", true));
        qs.push(q(p, Edit, &member.program, "", true));
        // A related client this employee is not assigned to; an unrelated one.
        if let Some(&c) = data
            .related
            .iter()
            .find(|&&c| !data.assignments.contains(&(e, c)))
        {
            qs.push(q(p, View, &data.clients[c].programs[0], &broker.bn9, false));
        }
        if let Some(c) = (0..data.clients.len()).find(|c| !data.related.contains(c)) {
            qs.push(q(p, View, &data.clients[c].programs[0], "", false));
        }
        qs.push(q(p, View, stranger, "", false));
        out.push(qs);
    }
    // Broker BAM: counts as assigned to every client as Editor.
    {
        let p = &broker.bam.principal;
        let mut qs = vec![q(p, Manage, &broker.bn9, "", true)];
        for &c in &data.related {
            qs.push(q(p, Edit, &data.clients[c].programs[0], "", true));
        }
        qs.push(q(p, View, stranger, "", false));
        out.push(qs);
    }
    // Importers' people.
    for client in &data.clients {
        let p = &client.bam.principal;
        out.push(vec![
            q(p, Manage, &client.bn9, "", true),
            q(p, Edit, &client.programs[1], "", true),
            q(p, View, stranger, "", false),
        ]);
        for m in &client.members {
            let p = &m.person.principal;
            let other = client
                .programs
                .iter()
                .find(|x| **x != m.program)
                .unwrap_or(&m.program);
            let editor = m.role == ccp_proto::common::v1::Role::Editor;
            out.push(vec![
                q(p, View, &m.program, "", true),
                q(p, Edit, &m.program, "", editor),
                q(p, View, &client.bn9, "", true),
                q(p, Manage, &client.bn9, "", false),
                q(p, View, other, "", false),
                q(p, View, stranger, "", false),
            ]);
        }
    }
    out.retain(|qs| !qs.is_empty());
    out
}

/// Draws `n` questions: principals by Zipf(1.1) in a shuffled order, then one
/// of that principal's questions by Zipf(0.8).
pub fn mix(data: &Dataset, n: usize, seed: u64) -> Vec<Question> {
    let mut by = questions_by_principal(data);
    let mut rng = Rng::new(seed);
    // Shuffle so the busiest principals are of every kind.
    for i in (1..by.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        by.swap(i, j);
    }
    let principals = Zipf::new(by.len(), 1.1);
    let laws: Vec<Zipf> = by.iter().map(|qs| Zipf::new(qs.len(), 0.8)).collect();
    (0..n)
        .map(|_| {
            let p = principals.sample(&mut rng);
            by[p][laws[p].sample(&mut rng)].clone()
        })
        .collect()
}
