//! Atmos's deep merge: maps merge key by key at every depth; any other value — a list included
//! unless the strategy says otherwise — replaces what was there, type changes and an explicit
//! `null` included.

use serde_json::Value;

/// How lists merge (`settings.list_merge_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListMerge {
    /// The later list replaces the earlier (Atmos's default).
    #[default]
    Replace,
    /// The later list is appended to the earlier.
    Append,
    /// Element by element: maps at the same index deep-merge, scalars keep the earlier
    /// element, extra elements of either list are kept.
    Merge,
}

impl ListMerge {
    /// The strategy named `name` (`replace`, `append`, `merge`; anything else: replace).
    pub fn named(name: Option<&str>) -> ListMerge {
        match name {
            Some("append") => ListMerge::Append,
            Some("merge") => ListMerge::Merge,
            _ => ListMerge::Replace,
        }
    }
}

/// Merge `over` onto `base`.
pub fn merge(base: &mut Value, over: &Value, lists: ListMerge) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v, lists),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => match lists {
            ListMerge::Replace => *b = o.clone(),
            ListMerge::Append => b.extend(o.iter().cloned()),
            ListMerge::Merge => {
                for (i, v) in o.iter().enumerate() {
                    match b.get_mut(i) {
                        Some(existing @ Value::Object(_)) if v.is_object() => {
                            merge(existing, v, lists)
                        }
                        Some(_) => {}
                        None => b.push(v.clone()),
                    }
                }
            }
        },
        (b, o) => *b = o.clone(),
    }
}

/// `layers` merged in order onto an empty map (empty maps skipped).
pub fn merged<'a>(layers: impl IntoIterator<Item = &'a Value>, lists: ListMerge) -> Value {
    let mut out = Value::Object(serde_json::Map::new());
    for layer in layers {
        if layer.is_null() || layer.as_object().is_some_and(serde_json::Map::is_empty) {
            continue;
        }
        merge(&mut out, layer, lists);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_and_everything_else_replaces() {
        let mut a = json!({"tags": {"Team": "Platform"}, "list": [1, 2], "x": [1]});
        merge(
            &mut a,
            &json!({"tags": {"Name": "vpc"}, "list": [3], "x": "scalar", "gone": null}),
            ListMerge::Replace,
        );
        assert_eq!(
            a,
            json!({"tags": {"Team": "Platform", "Name": "vpc"}, "list": [3], "x": "scalar", "gone": null})
        );
        let mut b = json!({"l": ["a", {"k": 1}]});
        merge(
            &mut b,
            &json!({"l": ["b", {"j": 2}, "c"]}),
            ListMerge::Merge,
        );
        assert_eq!(b, json!({"l": ["a", {"k": 1, "j": 2}, "c"]}));
        let mut c = json!({"l": ["a"]});
        merge(&mut c, &json!({"l": ["b"]}), ListMerge::Append);
        assert_eq!(c, json!({"l": ["a", "b"]}));
    }
}
