//! Every example in `ccp … --help` pastes: for each subcommand, the help the
//! built binary prints is read, each example (a line starting with `ccp ` or
//! `$ ccp`, after `Example:`, with `\` continuations joined) is checked by
//! `bash -n`, and every `ccp` command line in it is parsed by the real clap
//! parser (`ccp::cli::Cli`), so an example is a command line `ccp` accepts.
//! clap reflowing an example (a `\` continuation or a second example pulled
//! into the middle of a line) fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use ccp::help_examples::{command_lines, examples, subcommand_paths};
use clap::{CommandFactory as _, Parser as _};

/// Returns the help `ccp <path> --help` prints.
fn help_of(path: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(output.status.success(), "ccp {path:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_help_example_is_a_command_line_bash_and_ccp_accept() {
    let mut paths = vec![Vec::new()];
    paths.extend(subcommand_paths(&ccp::cli::Cli::command()));
    assert!(paths.len() > 60, "every subcommand: {}", paths.len());
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &paths {
        let help = help_of(path);
        for line in help.lines() {
            let reflowed = line.contains(" \\ ")
                || (line.trim_start().starts_with("Examples: ccp"))
                || line.matches("ccp ").count() > 1 && line.contains(") ccp ");
            if reflowed {
                failures.push(format!(
                    "ccp {} --help: an example was reflowed: {line}",
                    path.join(" ")
                ));
            }
        }
        for example in examples(&help) {
            let bash = Command::new("bash")
                .arg("-n")
                .arg("-c")
                .arg(&example)
                .output()
                .unwrap();
            if !bash.status.success() {
                failures.push(format!(
                    "bash -n refuses `{example}`: {}",
                    String::from_utf8_lossy(&bash.stderr)
                ));
            }
            for words in command_lines(&example).unwrap_or_else(|err| panic!("{example}: {err}")) {
                if let Err(err) = ccp::cli::Cli::try_parse_from(&words) {
                    failures.push(format!("`{example}` does not parse: {}", err.render()));
                }
                checked += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 60, "examples checked: {checked}");
}

#[test]
fn the_multi_line_examples_are_printed_as_written() {
    let help = help_of(&["business".into(), "register".into()]);
    let register = examples(&help);
    assert_eq!(register.len(), 1, "{help}");
    assert!(
        register[0].contains("--accept-terms 2026-01"),
        "{register:?}"
    );
    let login = examples(&help_of(&["login".into()]));
    assert_eq!(login.len(), 3, "{login:?}");
}

#[test]
fn ccp_help_groups_the_suite_commands_apart_from_the_client_commands() {
    let help = help_of(&[]);
    let suite = help
        .find("Suite commands")
        .unwrap_or_else(|| panic!("{help}"));
    let client = help
        .find("Client commands")
        .unwrap_or_else(|| panic!("{help}"));
    assert!(suite < client, "{help}");
    let section = |from: usize, to: usize| -> Vec<String> {
        help[from..to]
            .lines()
            .skip(1)
            .filter_map(|l| l.strip_prefix("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let options = help.find("Options:").unwrap();
    let suite_names = section(suite, client);
    let client_names = section(client, options);
    for name in [
        "up",
        "serve",
        "migrate",
        "keys",
        "registry",
        "demo",
        "bench",
        "completions",
    ] {
        assert!(suite_names.iter().any(|n| n == name), "{name}: {help}");
    }
    for name in [
        "login",
        "whoami",
        "business",
        "employee",
        "relationship",
        "check",
        "audit",
    ] {
        assert!(client_names.iter().any(|n| n == name), "{name}: {help}");
    }
    // Every subcommand is listed once.
    let all: Vec<String> = ccp::cli::Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut listed = [suite_names, client_names].concat();
    listed.sort();
    let mut expected = all;
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn completion_scripts_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(env!("CARGO_BIN_EXE_ccp"))
            .args(["completions", shell])
            .env("CCP_STATE_DIR", std::env::temp_dir().join("ccp-no-state"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("relationship"), "{shell}: {script}");
        if shell == "bash" {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &script).unwrap();
            let check = Command::new("bash")
                .arg("-n")
                .arg(file.path())
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
}
