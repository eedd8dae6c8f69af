//! Kubernetes' `$(VAR)` expansion, as the kubelet applies it to env values, `command` and
//! `args` (k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)` becomes the
//! variable's value, `$$` becomes `$` (so `$$(NAME)` stays `$(NAME)` literally), and a
//! reference to an unknown variable or an unterminated one stays as written.

use std::collections::BTreeMap;

/// Expands `input` with `lookup` giving the value of a variable (`None`: unknown).
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let (read, advance) = match read_reference(&input[cursor + 1..]) {
                Read::Variable { name, advance } => (
                    lookup(name).unwrap_or_else(|| format!("$({name})")),
                    advance,
                ),
                Read::Literal { text, advance } => (text, advance),
            };
            out.push_str(&read);
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&input[checkpoint..]);
    out
}

/// Expands `input` with the variables of `vars`.
pub fn expand_with(input: &str, vars: &BTreeMap<String, String>) -> String {
    expand(input, |name| vars.get(name).cloned())
}

/// What follows a `$`, and how many bytes after the `$` it used (minus one, as the caller's
/// loop steps over the last one).
enum Read<'a> {
    Variable { name: &'a str, advance: usize },
    Literal { text: String, advance: usize },
}

fn read_reference(after_operator: &str) -> Read<'_> {
    let first = after_operator
        .chars()
        .next()
        .expect("the caller checked that something follows the operator");
    match first {
        // `$$`: an escaped operator.
        '$' => Read::Literal {
            text: "$".into(),
            advance: 1,
        },
        '(' => match after_operator[1..].find(')') {
            Some(close) => Read::Variable {
                name: &after_operator[1..close + 1],
                advance: close + 2,
            },
            // Unterminated: keep `$(` and carry on after the `(`.
            None => Read::Literal {
                text: "$(".into(),
                advance: 1,
            },
        },
        // A lone operator: keep it and the character after it.
        other => Read::Literal {
            text: format!("${other}"),
            advance: other.len_utf8(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The cases of the kubelet's own expansion tests.
    #[test]
    fn expands_as_the_kubelet_does() {
        let cases = [
            ("$(VAR_A)", "A"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
            ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
            ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
            ("f000-$$VAR_A", "f000-$VAR_A"),
            ("foo\\$(VAR_C)bar", "foo\\Cbar"),
            ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
            ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
            ("$(VAR_REF)", "$(VAR_A)"),
            ("%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
            ("foo$(VAR_EMPTY)bar", "foobar"),
            ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
            ("f00__(VAR_A)__", "f00__(VAR_A)__"),
            ("$?_boo_$!", "$?_boo_$!"),
            ("$VAR_A", "$VAR_A"),
            ("$(VAR_DNE)", "$(VAR_DNE)"),
            ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
            ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
            ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
            ("$$$$$$$(VAR_A)", "$$$A"),
            ("$VAR_A)", "$VAR_A)"),
            ("${VAR_A}", "${VAR_A}"),
            ("$(VAR_B)_______$(A", "B_______$(A"),
            ("$(VAR_C)_______$(", "C_______$("),
            ("$(VAR_A)foobarzab$", "Afoobarzab$"),
            ("foo-\\$(VAR_A", "foo-\\$(VAR_A"),
            ("--$($($($($--", "--$($($($($--"),
            ("$($($($($--foo$(", "$($($($($--foo$("),
            ("foo0--$($($($(", "foo0--$($($($("),
            ("$(foo$$var)", "$(foo$$var)"),
            ("\n", "\n"),
            ("$()", "$()"),
            ("", ""),
            ("$", "$"),
        ];
        for (input, expected) in cases {
            assert_eq!(expand_with(input, &vars()), expected, "input {input:?}");
        }
    }

    #[test]
    fn keeps_non_ascii_after_a_lone_operator() {
        assert_eq!(expand_with("$é$(VAR_A)ü", &vars()), "$éAü");
        assert_eq!(expand_with("€$(VAR_B)€", &vars()), "€B€");
    }

    #[test]
    fn shell_syntax_is_left_for_the_shell() {
        let script = "for f in $(ls); do echo ${f} $$(VAR_A) $(VAR_A); done";
        assert_eq!(
            expand_with(script, &vars()),
            "for f in $(ls); do echo ${f} $(VAR_A) A; done"
        );
    }
}
