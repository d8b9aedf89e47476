//! The examples `ccp … --help` prints, read back out of the help text: the
//! tests check that each one pastes into a shell and that every client one
//! runs against a suite, so no example can go stale.

/// Returns the path of every subcommand of `command` (`["business",
/// "register"]`), depth first, without clap's `help`.
pub fn subcommand_paths(command: &clap::Command) -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(command, &[], &mut out);
    out
}

/// Returns the examples in a help text: the lines that start a command
/// (`ccp …`, `$ ccp …`, `VAR=value ccp …`, after an optional `Example:`),
/// each joined with its `\` continuation lines.
pub fn examples(help: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = help.lines();
    while let Some(line) = lines.next() {
        let text = line.trim_start();
        let text = text
            .strip_prefix("Examples:")
            .or_else(|| text.strip_prefix("Example:"))
            .unwrap_or(text)
            .trim_start();
        let text = text.strip_prefix("$ ").unwrap_or(text);
        let starts_command = text
            .split_whitespace()
            .find(|word| !is_assignment(word))
            .is_some_and(|word| word == "ccp");
        if !starts_command {
            continue;
        }
        let mut example = text.trim_end().to_owned();
        while example.ends_with('\\') {
            example.pop();
            let Some(next) = lines.next() else { break };
            example.push(' ');
            example.push_str(next.trim());
        }
        found.push(example);
    }
    found
}

/// Whether `word` is a shell variable assignment (`NAME=value`).
pub fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
    })
}

/// Returns the `ccp` command lines of an example: its words (up to a
/// comment) split at `&&`, `||`, `|` and `;`, without redirections and
/// leading variable assignments.
///
/// # Errors
///
/// Returns the shell-words error when the example's quoting is unbalanced.
pub fn command_lines(example: &str) -> Result<Vec<Vec<String>>, shell_words::ParseError> {
    let words = shell_words::split(example)?;
    let mut lines = vec![Vec::new()];
    let mut words = words.into_iter().take_while(|w| !w.starts_with('#'));
    while let Some(word) = words.next() {
        match word.as_str() {
            "&&" | "||" | "|" | ";" => lines.push(Vec::new()),
            ">" | ">>" | "<" | "2>" => {
                words.next();
            }
            w if w.starts_with('>') => {}
            _ => {
                if let Some(line) = lines.last_mut() {
                    line.push(word);
                }
            }
        }
    }
    Ok(lines
        .into_iter()
        .map(|line| {
            line.into_iter()
                .skip_while(|w| is_assignment(w))
                .collect::<Vec<_>>()
        })
        .filter(|line| line.first().is_some_and(|w| w == "ccp"))
        .collect())
}

/// What an example writes where an id the server made goes (a made-up id
/// prefix and an ellipsis): `businesses/123456782/relationships/0197…`.
pub const ID_PLACEHOLDER: &str = "0197…";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_example_with_a_continuation_is_one_example() {
        let help = "Example: ccp a b \\\n    --c d\n\nUsage: ccp a\n";
        assert_eq!(examples(help), vec!["ccp a b  --c d".to_owned()]);
    }

    #[test]
    fn command_lines_split_at_shell_operators_and_drop_redirections() {
        let lines = command_lines("X=1 ccp a > f && ccp b | grep c # ccp d").unwrap();
        assert_eq!(lines, vec![vec!["ccp", "a"], vec!["ccp", "b"]]);
    }
}
