//! Directed graphs given as "node → the nodes it comes after" (promotion sources, component
//! `depends_on`): cycle finding for validation, and layering for drawings and rollout waves.

use indexmap::IndexMap;

/// Node → predecessors, in a stable order.
pub type Edges = IndexMap<String, Vec<String>>;

/// The first cycle found, as the path that closes it (`[a, b, a]`), following edges from
/// predecessor to successor so that it reads in promotion order. Self-loops and edges to
/// unknown nodes are ignored: callers report those separately.
pub fn find_cycle(preds: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: IndexMap<&str, Mark> = preds.keys().map(|k| (k.as_str(), Mark::New)).collect();
    let mut stack: Vec<&str> = Vec::new();

    fn visit<'a>(
        node: &'a str,
        preds: &'a Edges,
        mark: &mut IndexMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        mark.insert(node, Mark::Active);
        stack.push(node);
        for p in preds.get(node).into_iter().flatten() {
            if p == node || !preds.contains_key(p.as_str()) {
                continue;
            }
            match mark.get(p.as_str()).copied() {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|n| *n == p)?;
                    // The stack walks successor → predecessor; reverse it to read a → b → a.
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(p.clone());
                    cycle.reverse();
                    return Some(cycle);
                }
                Some(Mark::New) => {
                    if let Some(c) = visit(p, preds, mark, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        mark.insert(node, Mark::Done);
        None
    }

    for node in preds.keys() {
        if mark.get(node.as_str()) == Some(&Mark::New)
            && let Some(c) = visit(node, preds, &mut mark, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

/// Group nodes into layers: layer 0 has no (known) predecessors, and every node sits one
/// layer below its deepest predecessor. Nodes on a cycle are put in a last layer.
pub fn layers(preds: &Edges) -> Vec<Vec<String>> {
    let mut depth: IndexMap<&str, usize> = IndexMap::new();
    let mut progress = true;
    while progress {
        progress = false;
        for (node, ps) in preds {
            if depth.contains_key(node.as_str()) {
                continue;
            }
            let known: Vec<&String> = ps
                .iter()
                .filter(|p| *p != node && preds.contains_key(p.as_str()))
                .collect();
            if known.iter().all(|p| depth.contains_key(p.as_str())) {
                let d = known
                    .iter()
                    .map(|p| depth[p.as_str()] + 1)
                    .max()
                    .unwrap_or(0);
                depth.insert(node, d);
                progress = true;
            }
        }
    }
    let max = depth.values().copied().max().map_or(0, |m| m + 1);
    let mut out: Vec<Vec<String>> = vec![Vec::new(); max];
    for (node, d) in &depth {
        out[*d].push((*node).to_owned());
    }
    let stuck: Vec<String> = preds
        .keys()
        .filter(|k| !depth.contains_key(k.as_str()))
        .cloned()
        .collect();
    if !stuck.is_empty() {
        out.push(stuck);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(&str, &[&str])]) -> Edges {
        list.iter()
            .map(|(n, ps)| (n.to_string(), ps.iter().map(|p| p.to_string()).collect()))
            .collect()
    }

    #[test]
    fn finds_a_cycle_in_promotion_order() {
        let g = edges(&[("dev", &["qa"]), ("qa", &["dev"]), ("prod", &["qa"])]);
        assert_eq!(
            find_cycle(&g),
            Some(vec!["dev".into(), "qa".into(), "dev".into()])
        );
        let g = edges(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"])]);
        let c = find_cycle(&g).expect("cycle");
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn no_cycle_in_a_dag_and_self_loops_are_left_to_callers() {
        let g = edges(&[
            ("dev", &[]),
            ("qa", &["dev"]),
            ("staging", &["dev"]),
            ("prod", &["qa", "staging"]),
        ]);
        assert_eq!(find_cycle(&g), None);
        assert_eq!(find_cycle(&edges(&[("a", &["a"])])), None);
    }

    #[test]
    fn layers_follow_the_longest_path() {
        let g = edges(&[
            ("prod", &["qa", "staging"]),
            ("staging", &["dev"]),
            ("qa", &["dev"]),
            ("dev", &[]),
        ]);
        assert_eq!(
            layers(&g),
            vec![
                vec!["dev".to_string()],
                vec!["staging".into(), "qa".into()],
                vec!["prod".into()]
            ]
        );
    }

    #[test]
    fn cyclic_nodes_land_in_a_last_layer() {
        let g = edges(&[("a", &[]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(
            layers(&g),
            vec![vec!["a".to_string()], vec!["b".into(), "c".into()]]
        );
    }
}
