//! `${NAME}` and `${NAME:-default}` in configuration files, expanded from the
//! environment before parsing (how `imsctl up --data-dir` points every node at its data).

use std::borrow::Cow;

/// Expands `${NAME}` / `${NAME:-default}` using `lookup`. Text without `${` is returned
/// as is. Fails with the variable's name when it is unset and has no default, or when a
/// `${` is not closed.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Cow<'_, str>, String> {
    if !text.contains("${") {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "unclosed ${".to_string())?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid =
            !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !valid {
            return Err(format!("bad variable name ${{{inner}}}"));
        }
        match lookup(name)
            .filter(|v| !v.is_empty())
            .or(default.map(str::to_string))
        {
            Some(v) => out.push_str(&v),
            None => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        (name == "IMS_DATA_DIR").then(|| "/var/lib/ims".to_string())
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(
            expand("a = \"${IMS_DATA_DIR}/tls\"", env).unwrap(),
            "a = \"/var/lib/ims/tls\""
        );
        assert_eq!(expand("${UNSET:-data}/x", env).unwrap(), "data/x");
        assert_eq!(
            expand("${IMS_DATA_DIR:-data}/x", env).unwrap(),
            "/var/lib/ims/x"
        );
        assert_eq!(
            expand("no variables $HOME", env).unwrap(),
            "no variables $HOME"
        );
    }

    #[test]
    fn unset_without_default_names_the_variable() {
        assert_eq!(expand("${UNSET}", env).unwrap_err(), "UNSET");
        assert!(expand("${OPEN", env).is_err());
        assert!(expand("${a b}", env).is_err());
    }
}
