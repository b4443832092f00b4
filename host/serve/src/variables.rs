//! Spin application variables: `[variables]` (with a default, or `required`) and each
//! component's `[component.<id>.variables]`, whose values are templates over them
//! (`"{{ default_model }}"`). Resolved once at start, with Spin's sources in Spin's order —
//! `--variable key=value`, then `SPIN_VARIABLE_<KEY>`, then the manifest's default — and served
//! to the component through `spin:variables/variables@3.0.0`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wasmtime::component::{Accessor, HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "spinfer:inference/host-variables",
    });
}

use bindings::spin::variables::variables::{self as wit, Error};

/// `[variables]`: an application variable.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

/// The prefix of the environment variables that set application variables.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// Spin's rule for variable names: lowercase ASCII letters, digits and single underscores,
/// starting with a letter and not ending with an underscore.
pub fn check_name(name: &str) -> Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !valid {
        bail!(
            "{name:?} is not a valid variable name: use lowercase letters, digits and single \
             underscores, starting with a letter"
        );
    }
    Ok(())
}

/// The application variables' values, from the sources in precedence order.
pub fn resolve_app(
    defs: &BTreeMap<String, VariableDef>,
    cli: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>> {
    for (name, _) in cli {
        check_name(name)?;
        if !defs.contains_key(name) {
            bail!("--variable {name}: the manifest's [variables] has no {name:?}");
        }
    }
    let mut values = HashMap::new();
    for (name, def) in defs {
        check_name(name)?;
        if def.required && def.default.is_some() {
            bail!("variable {name:?} is required and has a default: it can be only one");
        }
        let value = cli
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| env(&format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())))
            .or_else(|| def.default.clone());
        match value {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None => bail!(
                "variable {name:?} is required but has no value: set it with `--variable {name}=…` \
                 or {ENV_PREFIX}{}",
                name.to_ascii_uppercase()
            ),
        }
    }
    Ok(values)
}

/// Renders a component variable's template: `{{ name }}` becomes the application variable's
/// value; other text stays as it is.
pub fn render(template: &str, app: &HashMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("unclosed {{{{ in {template:?}"))?;
        let name = after[..end].trim();
        let value = app
            .get(name)
            .with_context(|| format!("{template:?} refers to {name:?}, which [variables] does not define"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A component's variables, resolved: what `get` answers.
#[derive(Clone, Debug, Default)]
pub struct ComponentVariables(Arc<HashMap<String, String>>);

impl ComponentVariables {
    pub fn resolve(templates: &BTreeMap<String, String>, app: &HashMap<String, String>) -> Result<Self> {
        let mut values = HashMap::new();
        for (name, template) in templates {
            check_name(name)?;
            let value = render(template, app).with_context(|| format!("component variable {name:?}"))?;
            values.insert(name.clone(), value);
        }
        Ok(ComponentVariables(Arc::new(values)))
    }

    pub fn get(&self, name: &str) -> Result<String, Error> {
        if check_name(name).is_err() {
            return Err(Error::InvalidName(name.to_string()));
        }
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Undefined(format!("no variable {name:?} is defined for this component")))
    }
}

/// Adds `spin:variables/variables` to a linker; `view` gives a store's variables.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> &ComponentVariables,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Variables>(linker, view)
}

struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a ComponentVariables;
}

impl wit::Host for &ComponentVariables {}

impl<T> wit::HostWithStore<T> for Variables {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, Error> {
        accessor.with(|mut view| view.get().get(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> BTreeMap<String, VariableDef> {
        BTreeMap::from([
            (
                "default_model".to_string(),
                VariableDef {
                    default: Some("mnist-cnn".into()),
                    ..VariableDef::default()
                },
            ),
            (
                "token".to_string(),
                VariableDef {
                    required: true,
                    secret: true,
                    ..VariableDef::default()
                },
            ),
        ])
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn cli_beats_environment_beats_default() {
        let cli = vec![("token".to_string(), "t".to_string())];
        let values = resolve_app(&defs(), &cli, no_env).unwrap();
        assert_eq!(values["default_model"], "mnist-cnn");
        let env = |key: &str| (key == "SPIN_VARIABLE_DEFAULT_MODEL").then(|| "mnist-seed".to_string());
        let values = resolve_app(&defs(), &cli, env).unwrap();
        assert_eq!(values["default_model"], "mnist-seed");
        let cli = vec![
            ("token".to_string(), "t".to_string()),
            ("default_model".to_string(), "mnist-lean".to_string()),
        ];
        let values = resolve_app(&defs(), &cli, env).unwrap();
        assert_eq!(values["default_model"], "mnist-lean");
    }

    #[test]
    fn a_required_variable_without_a_value_fails_at_start() {
        let err = resolve_app(&defs(), &[], no_env).unwrap_err();
        assert!(err.to_string().contains("\"token\" is required"), "{err}");
        let env = |key: &str| (key == "SPIN_VARIABLE_TOKEN").then(|| "from-env".to_string());
        assert_eq!(resolve_app(&defs(), &[], env).unwrap()["token"], "from-env");
    }

    #[test]
    fn names_follow_spins_rule() {
        for good in ["a", "default_model", "x9_y"] {
            check_name(good).unwrap();
        }
        for bad in ["", "Default", "9a", "a-b", "a__b", "a_", "_a"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let cli = vec![("unknown".to_string(), "x".to_string())];
        assert!(resolve_app(&defs(), &cli, no_env).is_err());
    }

    #[test]
    fn templates_render_and_lookups_answer_like_spin() {
        let app = HashMap::from([("default_model".to_string(), "mnist-seed".to_string())]);
        assert_eq!(render("{{ default_model }}", &app).unwrap(), "mnist-seed");
        assert_eq!(render("m-{{default_model}}-x", &app).unwrap(), "m-mnist-seed-x");
        assert!(render("{{ nope }}", &app).is_err());
        assert!(render("{{ default_model", &app).is_err());
        let templates = BTreeMap::from([("model".to_string(), "{{ default_model }}".to_string())]);
        let vars = ComponentVariables::resolve(&templates, &app).unwrap();
        assert_eq!(vars.get("model").unwrap(), "mnist-seed");
        assert!(matches!(vars.get("other"), Err(Error::Undefined(_))));
        assert!(matches!(vars.get("Bad-Name"), Err(Error::InvalidName(_))));
    }
}
