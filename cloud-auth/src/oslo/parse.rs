//! The rule parser: oslo.policy `_parser.py` (tokenizer and shift-reduce parser) and
//! `_parse_check`, with typed errors where oslo.policy falls back to a deny-all check.

use super::check::{Expr, Kind, Piece, Template};

/// Longest rule text accepted.
pub const MAX_RULE_LEN: usize = 16 * 1024;
/// Deepest nesting of `not`, `and`/`or` and parentheses accepted in one rule.
pub const MAX_DEPTH: usize = 16;

/// Why a rule text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// Longer than [`MAX_RULE_LEN`].
    #[error("rule longer than {MAX_RULE_LEN} bytes")]
    TooLong,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("rule nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Tokens that do not form one expression (unbalanced parentheses, a dangling `and`,
    /// a blank rule, ...).
    #[error("tokens do not form one expression")]
    Malformed,
    /// A check without `kind:match` form.
    #[error("check {0:?} is not of the form kind:match")]
    NotACheck(String),
    /// A quoted string where a check belongs.
    #[error("quoted string {0:?} where a check belongs")]
    QuotedString(String),
    /// `http:`/`https:` checks call a remote server; not supported.
    #[error("remote check {0:?} is not supported")]
    RemoteCheck(String),
    /// A check kind that Python would read as a literal this evaluator does not support.
    #[error("unsupported literal {0:?}")]
    UnsupportedLiteral(String),
    /// A `%` substitution other than `%(key)s` or `%%`.
    #[error("unsupported substitution in {0:?} (only %(key)s and %%)")]
    UnsupportedFormat(String),
}

/// Parser stack symbols (oslo.policy's token kinds) with their values and nesting depths.
enum Sym {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Check(Expr, usize),
    AndExpr(Vec<Expr>, usize),
    OrExpr(Vec<Expr>, usize),
}

/// Parses one rule text.
pub(super) fn parse(text: &str) -> Result<Expr, SyntaxError> {
    if text.len() > MAX_RULE_LEN {
        return Err(SyntaxError::TooLong);
    }
    if text.is_empty() {
        return Ok(Expr::True);
    }
    let mut stack = Vec::new();
    for word in text.split_whitespace() {
        let rest = word.trim_start_matches('(');
        for _ in 0..word.len() - rest.len() {
            shift(&mut stack, Sym::LParen)?;
        }
        if rest.is_empty() {
            continue;
        }
        let clean = rest.trim_end_matches(')');
        match clean.to_lowercase().as_str() {
            "and" => shift(&mut stack, Sym::And)?,
            "or" => shift(&mut stack, Sym::Or)?,
            "not" => shift(&mut stack, Sym::Not)?,
            "" => {}
            _ if is_quoted(rest) => return Err(SyntaxError::QuotedString(rest.to_owned())),
            _ => shift(&mut stack, Sym::Check(parse_check(clean)?, 1))?,
        }
        for _ in 0..rest.len() - clean.len() {
            shift(&mut stack, Sym::RParen)?;
        }
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(Sym::Check(e, _)), true) => Ok(e),
        (Some(Sym::AndExpr(es, _)), true) => Ok(Expr::And(es)),
        (Some(Sym::OrExpr(es, _)), true) => Ok(Expr::Or(es)),
        _ => Err(SyntaxError::Malformed),
    }
}

/// oslo.policy's quoted-string token: at least two characters, same quote at both ends.
fn is_quoted(tok: &str) -> bool {
    tok.len() >= 2
        && ((tok.starts_with('"') && tok.ends_with('"'))
            || (tok.starts_with('\'') && tok.ends_with('\'')))
}

fn depth_ok(depth: usize) -> Result<usize, SyntaxError> {
    if depth > MAX_DEPTH {
        Err(SyntaxError::TooDeep)
    } else {
        Ok(depth)
    }
}

/// Pushes a symbol and applies oslo.policy's reductions until none matches the stack's tail:
///
/// ```text
/// ( check ) | ( and_expr ) | ( or_expr )   -> check
/// check and check                          -> and_expr
/// or_expr and check                        -> or_expr (and binds to the last operand)
/// and_expr and check                       -> and_expr
/// check or check | and_expr or check       -> or_expr
/// or_expr or check                         -> or_expr
/// not check                                -> check
/// ```
fn shift(stack: &mut Vec<Sym>, sym: Sym) -> Result<(), SyntaxError> {
    stack.push(sym);
    loop {
        let reduced = match stack.as_slice() {
            [.., Sym::LParen, Sym::Check(..) | Sym::AndExpr(..) | Sym::OrExpr(..), Sym::RParen] => {
                let mut tail = stack.split_off(stack.len() - 3);
                tail.truncate(2);
                match tail.pop() {
                    Some(Sym::Check(e, d)) => Sym::Check(e, d),
                    Some(Sym::AndExpr(es, d)) => Sym::Check(Expr::And(es), d),
                    Some(Sym::OrExpr(es, d)) => Sym::Check(Expr::Or(es), d),
                    _ => return Err(SyntaxError::Malformed),
                }
            }
            [.., Sym::Check(..) | Sym::AndExpr(..) | Sym::OrExpr(..), Sym::And | Sym::Or, Sym::Check(..)] =>
            {
                let tail = stack.split_off(stack.len() - 3);
                let mut it = tail.into_iter();
                match (it.next(), it.next(), it.next()) {
                    (Some(left), Some(op), Some(Sym::Check(right, rd))) => {
                        combine(left, op, right, rd)?
                    }
                    _ => return Err(SyntaxError::Malformed),
                }
            }
            [.., Sym::Not, Sym::Check(..)] => match stack.pop() {
                Some(Sym::Check(e, d)) => {
                    stack.pop();
                    Sym::Check(Expr::Not(Box::new(e)), depth_ok(d + 1)?)
                }
                _ => return Err(SyntaxError::Malformed),
            },
            _ => return Ok(()),
        };
        stack.push(reduced);
    }
}

/// The binary reductions: `left op right` where `right` is a check of depth `rd`.
fn combine(left: Sym, op: Sym, right: Expr, rd: usize) -> Result<Sym, SyntaxError> {
    Ok(match (left, op) {
        (Sym::Check(l, ld), Sym::And) => Sym::AndExpr(vec![l, right], depth_ok(ld.max(rd) + 1)?),
        (Sym::AndExpr(mut es, d), Sym::And) => {
            es.push(right);
            Sym::AndExpr(es, depth_ok(d.max(rd + 1))?)
        }
        (Sym::OrExpr(mut es, d), Sym::And) => {
            // oslo.policy `_mix_or_and_expr`: the last operand of the `or` takes the `and`.
            let last = match es.pop() {
                Some(Expr::And(mut inner)) => {
                    inner.push(right);
                    Expr::And(inner)
                }
                Some(other) => Expr::And(vec![other, right]),
                None => return Err(SyntaxError::Malformed),
            };
            es.push(last);
            Sym::OrExpr(es, depth_ok(d.max(rd + 2))?)
        }
        (Sym::Check(l, ld), Sym::Or) => Sym::OrExpr(vec![l, right], depth_ok(ld.max(rd) + 1)?),
        (Sym::AndExpr(es, d), Sym::Or) => {
            Sym::OrExpr(vec![Expr::And(es), right], depth_ok(d.max(rd) + 1)?)
        }
        (Sym::OrExpr(mut es, d), Sym::Or) => {
            es.push(right);
            Sym::OrExpr(es, depth_ok(d.max(rd + 1))?)
        }
        _ => return Err(SyntaxError::Malformed),
    })
}

/// oslo.policy `_parse_check`: `!`, `@`, `rule:`, `role:`, remote checks, generic checks.
fn parse_check(text: &str) -> Result<Expr, SyntaxError> {
    match text {
        "!" => return Ok(Expr::False),
        "@" => return Ok(Expr::True),
        _ => {}
    }
    let Some((kind, matcher)) = text.split_once(':') else {
        return Err(SyntaxError::NotACheck(text.to_owned()));
    };
    match kind {
        "rule" => Ok(Expr::Rule(matcher.to_owned())),
        "role" => Ok(Expr::Role(parse_template(matcher)?)),
        "http" | "https" => Err(SyntaxError::RemoteCheck(text.to_owned())),
        _ => Ok(Expr::Generic {
            kind: parse_kind(kind)?,
            matcher: parse_template(matcher)?,
        }),
    }
}

/// The left side of a generic check: Python's `ast.literal_eval(kind)` where it yields a
/// literal (kept as its `str()`), else a credential path.
fn parse_kind(kind: &str) -> Result<Kind, SyntaxError> {
    let unsupported = || SyntaxError::UnsupportedLiteral(kind.to_owned());
    if matches!(kind, "True" | "False" | "None") {
        return Ok(Kind::Literal(kind.to_owned()));
    }
    let first = kind.chars().next().ok_or_else(unsupported)?;
    if first == '\'' || first == '"' {
        let inner = kind
            .strip_prefix(first)
            .and_then(|k| k.strip_suffix(first))
            .filter(|i| !i.contains(first) && !i.contains('\\'))
            .ok_or_else(unsupported)?;
        return Ok(Kind::Literal(inner.to_owned()));
    }
    let digits = kind.strip_prefix('-').unwrap_or(kind);
    if digits.starts_with(|c: char| c.is_ascii_digit()) {
        let canonical = digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return Err(unsupported());
        }
        let text = if digits == "0" { digits } else { kind };
        return Ok(Kind::Literal(text.to_owned()));
    }
    if matches!(first, '[' | '{' | '+') {
        return Err(unsupported());
    }
    Ok(Kind::Path(kind.split('.').map(str::to_owned).collect()))
}

/// The right side of a check: Python `%`-formatting with a mapping, restricted to `%(key)s`
/// and `%%`. Keys may hold balanced parentheses, as in Python.
fn parse_template(text: &str) -> Result<Template, SyntaxError> {
    let bad = || SyntaxError::UnsupportedFormat(text.to_owned());
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => lit.push('%'),
            Some('(') => {
                let mut key = String::new();
                let mut open = 1usize;
                loop {
                    let k = chars.next().ok_or_else(bad)?;
                    match k {
                        '(' => open += 1,
                        ')' => open -= 1,
                        _ => {}
                    }
                    if open == 0 {
                        break;
                    }
                    key.push(k);
                }
                if chars.next() != Some('s') {
                    return Err(bad());
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Key(key));
            }
            _ => return Err(bad()),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Text(lit));
    }
    Ok(Template(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(r: &str) -> Expr {
        Expr::Role(Template(vec![Piece::Text(r.into())]))
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tightest() {
        let (a, b, c, d) = (role("a"), role("b"), role("c"), role("d"));
        assert_eq!(
            parse("role:a or role:b and role:c").unwrap(),
            Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            parse("role:a and role:b or role:c").unwrap(),
            Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()])
        );
        // `_mix_or_and_expr` extends the last `and` of an `or`.
        assert_eq!(
            parse("role:a or role:b and role:c and role:d").unwrap(),
            Expr::Or(vec![
                a.clone(),
                Expr::And(vec![b.clone(), c.clone(), d.clone()])
            ])
        );
        assert_eq!(
            parse("not role:a and role:b").unwrap(),
            Expr::And(vec![Expr::Not(Box::new(a.clone())), b.clone()])
        );
        assert_eq!(
            parse("NOT (role:a OR role:b)").unwrap(),
            Expr::Not(Box::new(Expr::Or(vec![a.clone(), b.clone()])))
        );
        assert_eq!(
            parse("((role:a)) and (role:b or role:c)").unwrap(),
            Expr::And(vec![a, Expr::Or(vec![b, c])])
        );
    }

    #[test]
    fn checks_and_templates() {
        assert_eq!(parse("@").unwrap(), Expr::True);
        assert_eq!(parse("!").unwrap(), Expr::False);
        assert_eq!(parse("").unwrap(), Expr::True);
        assert_eq!(parse("rule:x").unwrap(), Expr::Rule("x".into()));
        assert_eq!(
            parse("(project_id:%(target.project.id)s)").unwrap(),
            Expr::Generic {
                kind: Kind::Path(vec!["project_id".into()]),
                matcher: Template(vec![Piece::Key("target.project.id".into())]),
            }
        );
        assert_eq!(
            parse("a.b:x%%y-%(k(1))s").unwrap(),
            Expr::Generic {
                kind: Kind::Path(vec!["a".into(), "b".into()]),
                matcher: Template(vec![Piece::Text("x%y-".into()), Piece::Key("k(1)".into())]),
            }
        );
        assert_eq!(
            parse("'Member':%(n)s").unwrap(),
            Expr::Generic {
                kind: Kind::Literal("Member".into()),
                matcher: Template(vec![Piece::Key("n".into())]),
            }
        );
        assert!(matches!(
            parse("-0:x").unwrap(),
            Expr::Generic { kind: Kind::Literal(l), .. } if l == "0"
        ));
        // `role:` checks are `kind:match` split at the first colon only.
        assert_eq!(parse("role:compute:admin").unwrap(), role("compute:admin"));
    }

    #[test]
    fn typed_errors() {
        use SyntaxError::*;
        let cases: &[(&str, SyntaxError)] = &[
            ("   ", Malformed),
            ("role:a and", Malformed),
            ("(role:a", Malformed),
            ("role:a)", Malformed),
            ("role:a role:b", Malformed),
            ("or role:a", Malformed),
            ("admin", NotACheck("admin".into())),
            ("'quoted'", QuotedString("'quoted'".into())),
            (
                "http://example.invalid/check",
                RemoteCheck("http://example.invalid/check".into()),
            ),
            ("007:x", UnsupportedLiteral("007".into())),
            ("1.5:x", UnsupportedLiteral("1.5".into())),
            ("'a'b':x", UnsupportedLiteral("'a'b'".into())),
            (":x", UnsupportedLiteral("".into())),
            ("a:%s", UnsupportedFormat("%s".into())),
            ("a:%(k)d", UnsupportedFormat("%(k)d".into())),
            ("a:%(k", UnsupportedFormat("%(k".into())),
            ("a:50%", UnsupportedFormat("50%".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn limits() {
        let deep = format!(
            "{}@{}",
            "(not ".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(&deep), Err(SyntaxError::TooDeep));
        let ok = format!(
            "{}@{}",
            "(not ".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
        let long = "role:a or ".repeat(MAX_RULE_LEN / 10) + "role:b";
        assert_eq!(parse(&long), Err(SyntaxError::TooLong));
        // A long flat `or` is fine: depth stays 2.
        let wide = "role:a or ".repeat(1000) + "role:b";
        assert!(parse(&wide).is_ok());
    }
}
