//! Conformance of stack resolution with the Atmos CLI: each scenario is written here in
//! Atmos's format and checked against the values Atmos documents or produces for
//! `atmos describe component <c> -s <stack>` (`vars`, `settings`, `env`, `workspace`, the
//! component's folder, the varfile's name). The source of each expected value is cited; the
//! Atmos repository is github.com/cloudposse/atmos.

use std::path::Path;

use atmos_core::config::Project;
use atmos_core::config::source::WorkTree;
use atmos_core::stacks::{Resolved, StackError, StackSettings, Stacks};
use serde_json::{Value, json};

struct Fixture {
    dir: tempfile::TempDir,
}

fn fixture(files: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    Fixture { dir }
}

impl Fixture {
    fn describe(&self, kind: &str, component: &str, stack: &str) -> Result<Resolved, StackError> {
        let project = Project::open(self.dir.path().to_owned()).expect("project");
        let settings = StackSettings::read(&project.settings, kind).expect("stacks configured");
        let source = WorkTree::new(self.dir.path());
        Stacks::new(&source, settings).component(stack, kind, component)
    }

    fn ok(&self, component: &str, stack: &str) -> Resolved {
        self.describe("terraform", component, stack)
            .unwrap_or_else(|e| panic!("{component} -s {stack}: {e}"))
    }
}

/// The minimal atmos.yaml the scenarios share ("A" in the notes: deploy/**, name_template
/// on `.vars.stage`, templates enabled).
const ATMOS_A: &str = "base_path: \"./\"\ncomponents:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"deploy/**/*\"]\n  excluded_paths: [\"**/_defaults.yaml\"]\n  name_template: \"{{ .vars.stage }}\"\ntemplates:\n  settings:\n    enabled: true\n";

fn quick_start() -> Fixture {
    // examples/quick-start-simple (atmos.yaml and stacks/), as in the Atmos repository.
    fixture(&[
        (
            "atmos.yaml",
            "base_path: \"./\"\ncomponents:\n  terraform:\n    base_path: \"components/terraform\"\n    apply_auto_approve: false\n    deploy_run_init: true\n    init_run_reconfigure: true\n    auto_generate_backend_file: false\nstacks:\n  base_path: \"stacks\"\n  included_paths:\n    - \"deploy/**/*\"\n  excluded_paths:\n    - \"**/_defaults.yaml\"\n  name_template: \"{{.vars.stage}}\"\nlogs:\n  level: Info\n  file: \"/dev/stderr\"\n",
        ),
        (
            "stacks/catalog/station.yaml",
            "components:\n  terraform:\n    station:\n      metadata:\n        component: weather\n        description: \"Weather station component\"\n      vars:\n        location: Los Angeles\n        lang: en\n        format: ''\n        options: '0'\n        units: m\n",
        ),
        (
            "stacks/deploy/dev.yaml",
            "vars:\n  stage: dev\nimport:\n  - catalog/station\ncomponents:\n  terraform:\n    station:\n      vars:\n        location: Stockholm\n        lang: sv\n",
        ),
        (
            "stacks/deploy/staging.yaml",
            "vars:\n  stage: staging\nimport:\n  - catalog/station\ncomponents:\n  terraform:\n    station:\n      vars:\n        location: Los Angeles\n        lang: en\n",
        ),
        (
            "stacks/deploy/prod.yaml",
            "vars:\n  stage: prod\nimport:\n  - catalog/station\ncomponents:\n  terraform:\n    station:\n      vars:\n        location: Los Angeles\n        lang: en\n",
        ),
        (
            "components/terraform/weather/main.tf",
            "variable \"stage\" {}\n",
        ),
    ])
}

/// S1: examples/quick-start-simple, `station` in `dev` — website/docs/quick-start/simple
/// (provision.mdx, "Stack Search Algorithm"): vars from the catalog overridden by the stack,
/// folder `weather` (metadata.component), workspace `dev-station` (internal/exec/stack_utils.go
/// BuildTerraformWorkspace: a derived component gets `<stack>-<component>`), varfile
/// `dev-station.terraform.tfvars.json` (internal/exec/path_utils.go).
#[test]
fn s01_quick_start_station_in_dev() {
    let r = quick_start().ok("station", "dev");
    assert_eq!(
        r.vars,
        json!({"stage": "dev", "location": "Stockholm", "lang": "sv", "format": "", "options": "0", "units": "m"})
    );
    assert_eq!(r.settings, json!({}));
    assert_eq!(r.env, json!({}));
    assert_eq!(r.component, "weather");
    assert_eq!(r.folder, "components/terraform/weather");
    assert_eq!(r.workspace, "dev-station");
    assert_eq!(r.varfile, "dev-station.terraform.tfvars.json");
    assert_eq!(r.stack_file, "deploy/dev");
    assert_eq!(r.imports, ["catalog/station"]);
    // Where each value was set: the stack's own file over the catalog it imports.
    assert_eq!(r.sources["vars.location"], "stacks/deploy/dev.yaml:9");
    assert_eq!(r.sources["vars.stage"], "stacks/deploy/dev.yaml:2");
    assert_eq!(r.sources["vars.units"], "stacks/catalog/station.yaml:12");
    assert_eq!(
        r.metadata,
        json!({"component": "weather", "description": "Weather station component"})
    );
}

/// S2: the same component in `prod` and `staging`, and `-s deploy/prod` naming the file
/// (a stack with a `/` that is a top-level file's path: internal/exec/utils.go processStacks).
#[test]
fn s02_quick_start_station_in_prod_and_staging() {
    let f = quick_start();
    for stage in ["prod", "staging"] {
        let r = f.ok("station", stage);
        assert_eq!(r.vars["stage"], stage);
        assert_eq!(r.vars["location"], "Los Angeles");
        assert_eq!(r.vars["lang"], "en");
        assert_eq!(r.workspace, format!("{stage}-station"));
    }
    assert_eq!(f.ok("station", "deploy/prod").stack, "prod");
    match f.describe("terraform", "station", "qa") {
        Err(StackError::NotFound { known, .. }) => {
            assert_eq!(known, ["dev", "prod", "staging"]);
        }
        other => panic!("{other:?}"),
    }
}

/// S3: `./` and `../` imports relative to the importing file, a name_template of three vars —
/// tests/fixtures/scenarios/relative-paths (snapshot
/// TestCLICommands_atmos_stacks_with_relative_paths.stdout.golden).
#[test]
fn s03_relative_imports_and_a_three_var_name() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "base_path: \"./\"\ncomponents:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"orgs/**/*\"]\n  excluded_paths: [\"**/_defaults.yaml\"]\n  name_template: \"{{.vars.namespace}}-{{.vars.tenant}}-{{.vars.stage}}\"\n",
        ),
        (
            "stacks/orgs/acme/_defaults.yaml",
            "vars: {namespace: acme}\n",
        ),
        (
            "stacks/orgs/acme/platform/_defaults.yaml",
            "import: [../_defaults]\nvars: {tenant: platform}\n",
        ),
        (
            "stacks/catalog/mock.yaml",
            "components: {terraform: {mock: {vars: {foo: \"foo catalog default\", bar: \"bar catalog default\", baz: \"baz catalog default\"}}}}\n",
        ),
        (
            "stacks/orgs/acme/platform/dev.yaml",
            "vars: {stage: dev}\nimport: [./_defaults, catalog/mock]\ncomponents: {terraform: {mock: {vars: {foo: \"foo dev override\", bar: \"bar dev override\"}}}}\n",
        ),
    ]);
    let r = f.ok("mock", "acme-platform-dev");
    assert_eq!(
        r.vars,
        json!({"bar": "bar dev override", "baz": "baz catalog default", "foo": "foo dev override", "namespace": "acme", "stage": "dev", "tenant": "platform"})
    );
    assert_eq!(r.workspace, "acme-platform-dev");
    assert_eq!(r.stack_file, "orgs/acme/platform/dev");
}

/// S4: glob imports merged in lexical order (the last, `aws-c`, wins), component scope over
/// the stack's, and `name_pattern` dropping `{region}` — TestHierarchicalImports_* in
/// internal/exec/stack_processor_utils_test.go; pkg/config/utils.go GetContextPrefix.
#[test]
fn s04_glob_imports_in_lexical_order_and_a_pattern_name() {
    let mut files = vec![
        ("atmos.yaml", "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"deploy/**/*\"]\n  name_pattern: \"{stage}-{environment}-{region}\"\n".to_owned()),
        ("stacks/catalog/base/defaults.yaml", "vars: {provider_type: aws}\n".to_owned()),
        ("stacks/catalog/mixins/region/us-east-1.yaml", "import: [\"catalog/mixins/provider/aws-*\"]\nvars: {region: us-east-1, vpc_cidr: 10.1.0.0/16}\n".to_owned()),
        ("stacks/catalog/mixins/account/dev.yaml", "vars: {stage: dev}\n".to_owned()),
        ("stacks/catalog/components/test-component/base.yaml", "components: {terraform: {test-component: {vars: {import_order_test: level-3-component-base, tags: {Component: test-component}}, settings: {import_order_test: level-3-component-variants-settings}}}}\n".to_owned()),
        ("stacks/catalog/components/test-component/variants.yaml", "import: [catalog/components/test-component/base]\ncomponents: {terraform: {test-component: {vars: {import_order_test: level-3-component-variants, variant: standard, high_availability: false, tags: {Variant: standard}}}}}\n".to_owned()),
        ("stacks/deploy/dev/us-east-1.yaml", "import: [catalog/mixins/account/dev, catalog/mixins/region/us-east-1, catalog/components/test-component/variants]\nvars: {import_order_test: level-4-stack-dev-us-east-1, environment: dev, tags: {Stack: dev-us-east-1}}\n".to_owned()),
    ];
    for (x, upper) in [("a", "A"), ("b", "B"), ("c", "C")] {
        files.push((
            match x {
                "a" => "stacks/catalog/mixins/provider/aws-a.yaml",
                "b" => "stacks/catalog/mixins/provider/aws-b.yaml",
                _ => "stacks/catalog/mixins/provider/aws-c.yaml",
            },
            format!("import: [catalog/base/defaults]\nvars: {{provider_priority: {x}, tags: {{ProviderPriority: {upper}, Source: level-2-provider-{x}}}}}\n"),
        ));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let f = fixture(&files);
    let r = f.ok("test-component", "dev-dev");
    assert_eq!(r.vars["provider_priority"], "c");
    assert_eq!(r.vars["provider_type"], "aws");
    assert_eq!(r.vars["tags"]["ProviderPriority"], "C");
    assert_eq!(r.vars["region"], "us-east-1");
    assert_eq!(r.vars["vpc_cidr"], "10.1.0.0/16");
    assert_eq!(r.vars["import_order_test"], "level-3-component-variants");
    assert_eq!(r.vars["tags"]["Component"], "test-component");
    assert_eq!(r.vars["tags"]["Variant"], "standard");
    assert_eq!(r.vars["tags"]["Stack"], "dev-us-east-1");
    assert_eq!(
        r.settings["import_order_test"],
        "level-3-component-variants-settings"
    );
    assert_eq!(r.workspace, "dev-dev");
}

/// S6: maps deep-merge across imports — website/docs/stacks/vars.mdx "Merge Behavior".
#[test]
fn s06_maps_deep_merge_across_imports() {
    let f = fixture(&[
        ("atmos.yaml", &ATMOS_A.replace("deploy/**/*", "orgs/**/*")),
        (
            "stacks/catalog/vpc/_defaults.yaml",
            "vars: {tags: {Team: Platform}}\n",
        ),
        (
            "stacks/orgs/acme/plat/prod/_defaults.yaml",
            "vars: {stage: prod, tags: {Environment: Production}}\n",
        ),
        (
            "stacks/orgs/acme/plat/prod/us-east-1.yaml",
            "import: [catalog/vpc/_defaults, orgs/acme/plat/prod/_defaults]\ncomponents: {terraform: {vpc: {vars: {vpc_cidr: 10.0.0.0/16, tags: {Name: prod-vpc}}}}}\n",
        ),
    ]);
    let r = f.ok("vpc", "prod");
    assert_eq!(
        r.vars,
        json!({"stage": "prod", "vpc_cidr": "10.0.0.0/16", "tags": {"Team": "Platform", "Environment": "Production", "Name": "prod-vpc"}})
    );
    assert_eq!(r.workspace, "prod");
}

/// S7: scope beats file position: a component's vars from an imported catalog override the
/// stack file's `terraform.vars` — internal/exec/stack_processor_merge.go
/// mergeComponentConfigurations; website/docs/cli/commands/describe/describe-component.mdx.
#[test]
fn s07_component_scope_beats_the_type_section_whatever_the_file() {
    let f = fixture(&[
        ("atmos.yaml", ATMOS_A),
        (
            "stacks/catalog/app.yaml",
            "components: {terraform: {app: {vars: {enabled: true}}}}\n",
        ),
        (
            "stacks/deploy/dev.yaml",
            "import: [catalog/app]\nvars: {stage: dev}\nterraform: {vars: {enabled: false, region: us-east-2}}\n",
        ),
    ]);
    assert_eq!(
        f.ok("app", "dev").vars,
        json!({"stage": "dev", "region": "us-east-2", "enabled": true})
    );
}

fn list_merge_fixture() -> Fixture {
    // tests/fixtures/scenarios/component-list-merge-strategy (atmos.yaml: replace).
    fixture(&[
        (
            "atmos.yaml",
            &format!("{ATMOS_A}settings:\n  list_merge_strategy: replace\n"),
        ),
        (
            "stacks/catalog/base.yaml",
            "components:\n  terraform:\n    base-component:\n      metadata: {component: mock, type: abstract}\n      vars: {tags: [base-tag-1, base-tag-2], name: base}\n    append-base:\n      metadata: {component: mock, type: abstract}\n      settings: {list_merge_strategy: append}\n      vars: {tags: [base-tag-1, base-tag-2], name: append-base}\n    mi-base-a: {metadata: {component: mock, type: abstract}, vars: {my_list: [from_a], name: mi-base-a}}\n    mi-base-b: {metadata: {component: mock, type: abstract}, vars: {my_list: [from_b], name: mi-base-b}}\n    mi-middle:\n      metadata: {component: mock, type: abstract, inherits: [mi-base-a]}\n      vars: {my_list: [from_middle], name: mi-middle}\n",
        ),
        (
            "stacks/deploy/dev.yaml",
            "import: [catalog/base]\nvars: {stage: dev}\ncomponents:\n  terraform:\n    replace-component:\n      metadata: {component: mock, inherits: [base-component]}\n      vars: {tags: [child-tag], name: replace-child}\n    append-component:\n      metadata: {component: mock, inherits: [base-component]}\n      settings: {list_merge_strategy: append}\n      vars: {tags: [child-tag], name: append-child}\n    inherit-strategy-component:\n      metadata: {component: mock, inherits: [append-base]}\n      vars: {tags: [child-tag], name: inherit-strategy-child}\n    mi-replace:\n      metadata: {component: mock, inherits: [mi-base-a, mi-base-b]}\n      vars: {name: mi-replace-child}\n    mi-append:\n      metadata: {component: mock, inherits: [mi-base-a, mi-base-b]}\n      settings: {list_merge_strategy: append}\n      vars: {name: mi-append-child}\n    mi-multi-level-append:\n      metadata: {component: mock, inherits: [mi-middle]}\n      settings: {list_merge_strategy: append}\n      vars: {my_list: [from_leaf], name: mi-multi-level-append-child}\n    mi-merge-strategy:\n      metadata: {component: mock, inherits: [mi-base-a, mi-base-b]}\n      settings: {list_merge_strategy: merge}\n      vars: {name: mi-merge-strategy-child}\n",
        ),
    ])
}

/// S8: lists replace by default across inheritance — TestComponentLevelListMergeStrategy
/// "component without override uses global replace strategy"
/// (internal/exec/stack_processor_merge_test.go).
#[test]
fn s08_lists_replace_across_inheritance() {
    let r = list_merge_fixture().ok("replace-component", "dev");
    assert_eq!(
        r.vars,
        json!({"stage": "dev", "tags": ["child-tag"], "name": "replace-child"})
    );
    assert_eq!(r.workspace, "dev-replace-component");
    assert_eq!(r.folder, "components/terraform/mock");
}

/// S9 and S10: a component's (or its base's) `settings.list_merge_strategy: append` —
/// "component-level append overrides global replace", "strategy inherited from base component
/// settings" (same test file).
#[test]
fn s09_s10_append_from_the_component_or_its_base() {
    let f = list_merge_fixture();
    let r = f.ok("append-component", "dev");
    assert_eq!(
        r.vars["tags"],
        json!(["base-tag-1", "base-tag-2", "child-tag"])
    );
    assert_eq!(r.settings["list_merge_strategy"], "append");
    let r = f.ok("inherit-strategy-component", "dev");
    assert_eq!(
        r.vars["tags"],
        json!(["base-tag-1", "base-tag-2", "child-tag"])
    );
    assert_eq!(r.settings["list_merge_strategy"], "append");
}

/// S11–S13: multiple inheritance (a later base wins; nearest first in `inheritance`),
/// multi-level append, `merge` keeps the earlier scalar — TestListMergeStrategyWithMetadataInherits
/// (internal/exec/stack_processor_merge_test.go); website/docs/howto/inheritance.mdx.
#[test]
fn s11_s13_multiple_and_multi_level_inheritance() {
    let f = list_merge_fixture();
    let r = f.ok("mi-replace", "dev");
    assert_eq!(r.vars["my_list"], json!(["from_b"]));
    assert_eq!(r.vars["name"], "mi-replace-child");
    assert_eq!(r.inheritance, ["mi-base-b", "mi-base-a"]);
    assert_eq!(
        f.ok("mi-append", "dev").vars["my_list"],
        json!(["from_a", "from_b"])
    );
    assert_eq!(
        f.ok("mi-multi-level-append", "dev").vars["my_list"],
        json!(["from_a", "from_middle", "from_leaf"])
    );
    assert_eq!(
        f.ok("mi-merge-strategy", "dev").vars["my_list"],
        json!(["from_a"])
    );
}

/// S14: a later value replaces whatever type was there, `null` included; one stack spans two
/// top-level files — tests/merge_type_override_test.go TestMergeTypeOverride_StackComposition.
#[test]
fn s14_type_changes_and_null_override() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"orgs/**/*\"]\n  excluded_paths: [\"**/_defaults.yaml\"]\n  name_template: \"{{.vars.tenant}}-{{.vars.environment}}-{{.vars.stage}}\"\n",
        ),
        (
            "stacks/catalog/vpc-defaults.yaml",
            "components: {terraform: {vpc: {vars: {enabled: true, cidr_blocks: [10.0.0.0/16, 10.1.0.0/16]}}}}\n",
        ),
        (
            "stacks/catalog/vpc-sandbox.yaml",
            "import: [catalog/vpc-defaults]\ncomponents: {terraform: {vpc: {vars: {cidr_blocks: \"10.99.0.0/16\"}}}}\n",
        ),
        (
            "stacks/catalog/s3-defaults.yaml",
            "components: {terraform: {s3-bucket: {vars: {enabled: true, lifecycle_rules: [{id: expire-old, enabled: true, expiration: {days: 90}}]}}}}\n",
        ),
        (
            "stacks/catalog/s3-sandbox.yaml",
            "import: [catalog/s3-defaults]\ncomponents: {terraform: {s3-bucket: {vars: {lifecycle_rules: null}}}}\n",
        ),
        (
            "stacks/orgs/acme/_defaults.yaml",
            "vars: {namespace: acme}\n",
        ),
        (
            "stacks/orgs/acme/sandbox/_defaults.yaml",
            "import: [orgs/acme/_defaults]\nvars: {tenant: sandbox}\n",
        ),
        (
            "stacks/orgs/acme/sandbox/us-east-1/vpc.yaml",
            "import: [orgs/acme/sandbox/_defaults, catalog/vpc-sandbox]\nvars: {environment: use1, stage: sandbox}\n",
        ),
        (
            "stacks/orgs/acme/sandbox/us-east-1/s3.yaml",
            "import: [orgs/acme/sandbox/_defaults, catalog/s3-sandbox]\nvars: {environment: use1, stage: sandbox}\n",
        ),
    ]);
    assert_eq!(
        f.ok("vpc", "sandbox-use1-sandbox").vars["cidr_blocks"],
        "10.99.0.0/16"
    );
    let s3 = f.ok("s3-bucket", "sandbox-use1-sandbox");
    assert_eq!(s3.vars["lifecycle_rules"], Value::Null);
    assert_eq!(s3.stack_file, "orgs/acme/sandbox/us-east-1/s3");
}

/// S15: an abstract base with `metadata.component` passes on its backend —
/// internal/exec/abstract_component_backend_test.go; the workspace of a derived component
/// with a `/` in its name (`/` → `-`, stack_utils.go BuildTerraformWorkspace).
#[test]
fn s15_abstract_base_with_backend() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  excluded_paths: []\n  name_template: \"{{ .vars.tenant }}-{{ .vars.environment }}-{{ .vars.stage }}\"\n",
        ),
        (
            "stacks/catalog/eks-service-defaults.yaml",
            "components:\n  terraform:\n    eks/service/defaults:\n      metadata: {type: abstract, component: eks-service}\n      backend_type: s3\n      backend: {s3: {workspace_key_prefix: eks-service}}\n      vars: {namespace: acme, enabled: true}\n",
        ),
        (
            "stacks/tenant1-dev.yaml",
            "import: [catalog/eks-service-defaults]\nvars: {tenant: tenant1, environment: ue2, stage: dev}\ncomponents:\n  terraform:\n    eks/service/app1:\n      metadata: {component: eks-service, inherits: [eks/service/defaults]}\n      vars: {name: app1}\n",
        ),
    ]);
    let r = f.ok("eks/service/app1", "tenant1-ue2-dev");
    assert_eq!(r.component, "eks-service");
    assert_eq!(r.backend_type.as_deref(), Some("s3"));
    assert_eq!(r.backend, json!({"workspace_key_prefix": "eks-service"}));
    assert_eq!(
        r.vars,
        json!({"tenant": "tenant1", "environment": "ue2", "stage": "dev", "namespace": "acme", "enabled": true, "name": "app1"})
    );
    assert_eq!(r.workspace, "tenant1-ue2-dev-eks-service-app1");
    assert!(!r.is_abstract);
    let base = f
        .describe("terraform", "eks/service/defaults", "tenant1-ue2-dev")
        .expect("an abstract component resolves");
    assert!(base.is_abstract);
}

/// S16: `metadata.inherits` without `metadata.component`: the folder is the component's own
/// name and the workspace has no suffix — internal/exec/component_inheritance_test.go.
#[test]
fn s16_inherits_without_metadata_component() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  name_template: \"{{ .vars.stage }}\"\n",
        ),
        (
            "stacks/base.yaml",
            "components: {terraform: {base-component: {vars: {enabled: true, name: base-component, base_var: base-value}}}}\n",
        ),
        (
            "stacks/test.yaml",
            "import: [base]\nvars: {stage: test}\ncomponents:\n  terraform:\n    derived-component:\n      metadata: {inherits: [base-component]}\n      vars: {name: derived-component, derived_var: derived-value}\n",
        ),
    ]);
    let r = f.ok("derived-component", "test");
    assert_eq!(r.component, "derived-component");
    assert_eq!(
        r.vars,
        json!({"stage": "test", "enabled": true, "name": "derived-component", "base_var": "base-value", "derived_var": "derived-value"})
    );
    assert_eq!(r.inheritance, ["base-component"]);
    assert_eq!(r.workspace, "test");
}

fn overrides_fixture() -> Fixture {
    // tests/fixtures/scenarios/atmos-overrides-section.
    fixture(&[
        ("atmos.yaml", ATMOS_A),
        (
            "stacks/catalog/c1.yaml",
            "components: {terraform: {c1: {vars: {test: {a: a, b: b, c: c, d: d}}}}}\n",
        ),
        (
            "stacks/teams/team1.yaml",
            "import: [catalog/c1]\nterraform: {overrides: {vars: {test: {a: a-team1, b: b-team1, c: c-team1}}}}\n",
        ),
        (
            "stacks/teams/team2.yaml",
            "import: [catalog/c1]\nterraform: {overrides: {vars: {test: {a: a-team2, b: b-team2}}}}\n",
        ),
        (
            "stacks/catalog/overrides.yaml",
            "terraform: {overrides: {vars: {test: {a: a-overridden, b: b-overridden}}}}\n",
        ),
        (
            "stacks/deploy/dev.yaml",
            "vars: {stage: dev}\nimport: [teams/team1, teams/team2]\nterraform: {overrides: {vars: {test: {a: a-dev}}}}\n",
        ),
        (
            "stacks/deploy/prod.yaml",
            "vars: {stage: prod}\nimport: [teams/team1, teams/team2]\nterraform: {overrides: {vars: {test: {a: a-prod, b: b-prod, c: c-prod}}}}\n",
        ),
        (
            "stacks/deploy/sandbox.yaml",
            "vars: {stage: sandbox}\nimport: [teams/team1, teams/team2]\n",
        ),
        (
            "stacks/deploy/test.yaml",
            "vars: {stage: test}\nimport: [teams/team1]\noverrides: {vars: {test: {a: a-test, b: b-test}}}\nterraform: {overrides: {vars: {test: {a: a-test-2}}}}\n",
        ),
        (
            "stacks/deploy/test2.yaml",
            "vars: {stage: test2}\nimport: [catalog/c1, catalog/overrides]\n",
        ),
        (
            "stacks/deploy/test3.yaml",
            "vars: {stage: test3}\nimport: [catalog/overrides, catalog/c1]\n",
        ),
    ])
}

/// S17: file-scoped overrides: an importing file's beat an imported file's, the type's beat
/// the global ones, a later team's beat an earlier's — tests/test-cases/atmos-overrides-section.yaml.
#[test]
fn s17_file_scoped_overrides() {
    let f = overrides_fixture();
    let dev = f.ok("c1", "dev");
    assert_eq!(dev.sources["vars.test.a"], "stacks/deploy/dev.yaml:3");
    assert_eq!(dev.sources["vars.test.b"], "stacks/teams/team2.yaml:2");
    assert_eq!(dev.sources["vars.test.d"], "stacks/catalog/c1.yaml:1");
    for (stack, expected) in [
        (
            "prod",
            json!({"a": "a-prod", "b": "b-prod", "c": "c-prod", "d": "d"}),
        ),
        (
            "dev",
            json!({"a": "a-dev", "b": "b-team2", "c": "c-team1", "d": "d"}),
        ),
        (
            "sandbox",
            json!({"a": "a-team2", "b": "b-team2", "c": "c-team1", "d": "d"}),
        ),
        (
            "test",
            json!({"a": "a-test-2", "b": "b-test", "c": "c-team1", "d": "d"}),
        ),
    ] {
        assert_eq!(f.ok("c1", stack).vars["test"], expected, "{stack}");
    }
}

/// S18: overrides do not reach components of sibling files, whatever the import order —
/// website/docs/stacks/overrides.mdx.
#[test]
fn s18_overrides_do_not_leak_into_sibling_files() {
    let f = overrides_fixture();
    for stack in ["test2", "test3"] {
        assert_eq!(
            f.ok("c1", stack).vars["test"],
            json!({"a": "a", "b": "b", "c": "c", "d": "d"}),
            "{stack}"
        );
    }
}

/// S19: Go templates across sections (`.vars`, `.settings`, `.metadata`), backend included —
/// tests/test-cases/stack-templates.yaml.
#[test]
fn s19_templates_across_sections() {
    let f = fixture(&[
        ("atmos.yaml", ATMOS_A),
        (
            "stacks/deploy/nonprod.yaml",
            "vars: {stage: nonprod}\nterraform:\n  backend_type: s3\n  backend:\n    s3: {encrypt: true, bucket: \"{{ .vars.stage }}-tfstate\", key: terraform.tfstate, dynamodb_table: \"{{ .vars.stage }}-tfstate-lock\", acl: bucket-owner-full-control, region: us-east-2}\ncomponents:\n  terraform:\n    component-1:\n      metadata: {component: mock}\n      backend: {s3: {workspace_key_prefix: \"{{ .metadata.component }}\"}}\n      settings: {config: {a: component-1-a, b: component-1-b, c: component-1-c}}\n      vars: {foo: \"{{ .settings.config.a }}\", bar: \"{{ .settings.config.b }}\", baz: \"{{ .settings.config.c }}\"}\n",
        ),
    ]);
    let r = f.ok("component-1", "nonprod");
    assert_eq!(
        r.vars,
        json!({"stage": "nonprod", "foo": "component-1-a", "bar": "component-1-b", "baz": "component-1-c"})
    );
    assert_eq!(
        r.backend,
        json!({"encrypt": true, "bucket": "nonprod-tfstate", "key": "terraform.tfstate", "dynamodb_table": "nonprod-tfstate-lock", "acl": "bucket-owner-full-control", "region": "us-east-2", "workspace_key_prefix": "mock"})
    );
    assert_eq!(r.workspace, "nonprod-component-1");
}

/// S20 and S22: a manifest's `name` beats `name_template`; without any naming rule the stack is
/// the file's path; a file name is not a stack name when a rule applies —
/// internal/exec/stack_manifest_name_test.go; snapshots
/// TestCLICommands_atmos_describe_component_mock_-s_{dev,production,prod_(invalid…)}.
#[test]
fn s20_s22_stack_names() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  excluded_paths: [\"**/catalog/**\"]\n  name_template: \"{{ .vars.environment }}-{{ .vars.stage }}\"\n",
        ),
        (
            "stacks/catalog/base.yaml",
            "components: {terraform: {vpc: {metadata: {component: mock}, vars: {enabled: true}}}}\n",
        ),
        (
            "stacks/with-explicit-name.yaml",
            "name: my-explicit-stack\nimport: [catalog/base]\nvars: {environment: prod, stage: ue1}\ncomponents: {terraform: {vpc: {vars: {cidr: 10.0.0.0/16}}}}\n",
        ),
        (
            "stacks/without-explicit-name.yaml",
            "import: [catalog/base]\nvars: {environment: prod, stage: ue2}\ncomponents: {terraform: {vpc: {vars: {cidr: 10.1.0.0/16}}}}\n",
        ),
    ]);
    let r = f.ok("vpc", "my-explicit-stack");
    assert_eq!(r.stack_file, "with-explicit-name");
    assert_eq!(
        r.vars,
        json!({"environment": "prod", "stage": "ue1", "enabled": true, "cidr": "10.0.0.0/16"})
    );
    assert_eq!(r.workspace, "my-explicit-stack-vpc");
    let r = f.ok("vpc", "prod-ue2");
    assert_eq!(r.stack_file, "without-explicit-name");
    assert_eq!(r.workspace, "prod-ue2-vpc");
    for wrong in ["prod-ue1", "with-explicit-name"] {
        assert!(f.describe("terraform", "vpc", wrong).is_err(), "{wrong}");
    }

    let zero = fixture(&[
        (
            "atmos.yaml",
            "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  excluded_paths: []\n",
        ),
        (
            "stacks/dev.yaml",
            "components: {terraform: {mock: {vars: {environment: development, enabled: true}}}}\n",
        ),
        (
            "stacks/prod.yaml",
            "name: production\ncomponents: {terraform: {mock: {vars: {environment: production, enabled: true}}}}\n",
        ),
    ]);
    let dev = zero.ok("mock", "dev");
    assert_eq!((dev.stack.as_str(), dev.workspace.as_str()), ("dev", "dev"));
    assert_eq!(
        dev.vars,
        json!({"environment": "development", "enabled": true})
    );
    let prod = zero.ok("mock", "production");
    assert_eq!(prod.stack_file, "prod");
    assert_eq!(prod.workspace, "production");
    match zero.describe("terraform", "mock", "prod") {
        Err(e @ StackError::NotFound { .. }) => {
            use atmos_core::error::Actionable as _;
            assert!(
                e.hint()
                    .unwrap_or_default()
                    .contains("did you mean `production`?"),
                "{:?}",
                e.hint()
            );
        }
        other => panic!("{other:?}"),
    }
}

/// S24 and S25: `env` from atmos.yaml (lowest), the stack, the component type, the component —
/// internal/exec/stack_processor_env_inheritance_test.go; stack_processor_process_stacks.go
/// (atmos.yaml `env` merged first). A helmfile section never reaches a terraform component.
#[test]
fn s24_s25_env_layers() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "env: {GLOBAL_ENV_FROM_ATMOS: atmos-yaml-value, OVERRIDE_ME: atmos-value}\ncomponents:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  excluded_paths: [\"globals.yaml\", \"catalog/**/*\"]\n  name_template: \"{{.vars.stage}}\"\n",
        ),
        (
            "stacks/globals.yaml",
            "env: {GLOBAL_ENV_VAR: global-value, GLOBAL_OVERRIDE_TEST: from-global, FOO: bar, OVERRIDE_ME: stack-value}\nterraform: {env: {TF_GLOBAL_VAR: terraform-global, TF_OVERRIDE_TEST: from-terraform-global}}\nhelmfile: {env: {HF_GLOBAL_VAR: helmfile-global}}\n",
        ),
        (
            "stacks/catalog/test-component.yaml",
            "components: {terraform: {test-component: {metadata: {type: abstract}, env: {COMPONENT_ENV_VAR: from-catalog}}}}\n",
        ),
        (
            "stacks/dev.yaml",
            "import: [globals, catalog/test-component]\nvars: {stage: dev}\ncomponents:\n  terraform:\n    test-component-dev:\n      metadata: {component: test-component}\n      env: {STACK_ENV_VAR: stack-value, COMPONENT_ENV_VAR: overridden-by-stack, TF_OVERRIDE_TEST: from-stack, GLOBAL_OVERRIDE_TEST: overridden-by-stack}\n      vars: {stage: dev}\n",
        ),
    ]);
    let r = f.ok("test-component-dev", "dev");
    assert_eq!(
        r.env,
        json!({"GLOBAL_ENV_FROM_ATMOS": "atmos-yaml-value", "OVERRIDE_ME": "stack-value", "GLOBAL_ENV_VAR": "global-value", "GLOBAL_OVERRIDE_TEST": "overridden-by-stack", "FOO": "bar", "TF_GLOBAL_VAR": "terraform-global", "TF_OVERRIDE_TEST": "from-stack", "STACK_ENV_VAR": "stack-value", "COMPONENT_ENV_VAR": "overridden-by-stack"})
    );
    assert_eq!(r.workspace, "dev-test-component-dev");
}

/// S23: `!include` of a local file relative to the manifest (YAML here; Atmos parses HCL
/// `.tfvars` too, which atmos does not) — website/docs/functions/yaml/include.mdx; and YAML
/// functions that read infrastructure are refused for the component that uses one only.
#[test]
fn s23_include_and_infrastructure_functions() {
    let f = fixture(&[
        (
            "atmos.yaml",
            "components:\n  terraform:\n    base_path: components/terraform\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  excluded_paths: [\"**/_defaults.yaml\"]\n",
        ),
        (
            "stacks/_defaults.yaml",
            "components: {terraform: {vpc: {vars: {enable_dns_hostnames: true}}}}\n",
        ),
        (
            "stacks/dev.yaml",
            "name: dev\nimport: [_defaults]\nvars: {environment: dev}\ncomponents:\n  terraform:\n    vpc:\n      vars: !include ../components/terraform/vpc/envs/dev.yaml\n    eks:\n      vars:\n        vpc_id: !terraform.state vpc vpc_id\n",
        ),
        (
            "components/terraform/vpc/envs/dev.yaml",
            "cidr_block: 10.0.0.0/16\nenvironment: dev\ntags: {Environment: Development, Team: platform}\n",
        ),
    ]);
    let r = f.ok("vpc", "dev");
    assert_eq!(
        r.vars,
        json!({"cidr_block": "10.0.0.0/16", "enable_dns_hostnames": true, "environment": "dev", "tags": {"Environment": "Development", "Team": "platform"}})
    );
    assert_eq!(r.imports, ["_defaults"]);
    match f.describe("terraform", "eks", "dev") {
        Err(StackError::Component { why, .. }) => {
            assert!(why.contains("vars.vpc_id uses `!terraform.state`"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

/// S5: templated import paths (from an earlier import's settings, and from an import's own
/// `context`) — TestProcessYAMLConfigFile_TemplatedImportPath_* in
/// internal/exec/stack_processor_utils_test.go.
#[test]
fn s05_templated_import_paths() {
    let f = fixture(&[
        ("atmos.yaml", ATMOS_A),
        (
            "stacks/_defaults.yaml",
            "settings: {context: {catalog_ref: v1}}\nvars: {region: us-east-1, stage: dev}\n",
        ),
        (
            "stacks/catalog/v1/service.yaml",
            "components: {terraform: {service: {vars: {catalog_version: v1}}}}\n",
        ),
        (
            "stacks/catalog/v2/service.yaml",
            "components: {terraform: {service: {vars: {catalog_version: v2}}}}\n",
        ),
        (
            "stacks/deploy/dev.yaml",
            "import:\n  - _defaults\n  - \"catalog/{{ .settings.context.catalog_ref }}/service\"\ncomponents: {terraform: {service: {vars: {deployed: true}}}}\n",
        ),
        (
            "stacks/deploy/explicit.yaml",
            "vars: {stage: explicit}\nimport:\n  - path: \"catalog/{{ .catalog_ref }}/service\"\n    context: {catalog_ref: v2}\n",
        ),
    ]);
    assert_eq!(
        f.ok("service", "dev").vars,
        json!({"region": "us-east-1", "stage": "dev", "catalog_version": "v1", "deployed": true})
    );
    assert_eq!(
        f.ok("service", "explicit").vars,
        json!({"stage": "explicit", "catalog_version": "v2"})
    );
}

/// Imports that cannot be read are errors naming the file: a cycle, a missing file, an import
/// leaving the stacks folder.
#[test]
fn broken_imports_are_errors_naming_the_file() {
    let f = fixture(&[
        ("atmos.yaml", ATMOS_A),
        ("stacks/catalog/a.yaml", "import: [catalog/b]\n"),
        ("stacks/catalog/b.yaml", "import: [catalog/a]\n"),
        (
            "stacks/deploy/dev.yaml",
            "vars: {stage: dev}\nimport: [catalog/a]\ncomponents: {terraform: {x: {vars: {}}}}\n",
        ),
        (
            "stacks/deploy/qa.yaml",
            "vars: {stage: qa}\nimport: [catalog/nope]\ncomponents: {terraform: {x: {vars: {}}}}\n",
        ),
    ]);
    let e = f
        .describe("terraform", "x", "dev")
        .expect_err("a cycle")
        .to_string();
    assert!(e.contains("imports itself"), "{e}");
    let project_root = f.dir.path();
    std::fs::remove_file(project_root.join("stacks/deploy/dev.yaml")).expect("rm");
    let e = f
        .describe("terraform", "x", "qa")
        .expect_err("missing")
        .to_string();
    assert!(
        e.contains("the import `catalog/nope` matches no file"),
        "{e}"
    );
    std::fs::write(
        project_root.join("stacks/deploy/qa.yaml"),
        "vars: {stage: qa}\nimport: [../../etc/passwd]\ncomponents: {terraform: {x: {vars: {}}}}\n",
    )
    .expect("write");
    let e = f
        .describe("terraform", "x", "qa")
        .expect_err("outside")
        .to_string();
    assert!(e.contains("leads outside the stacks folder"), "{e}");
    let _ = Path::new("");
}

/// What a hostile manifest tries is refused, naming why: a component folder outside the
/// project (`..`, an absolute base path), a flow nesting deep enough to make the YAML parser
/// slow, and templates whose output multiplies.
#[test]
fn hostile_manifests_are_refused() {
    let base = [
        (
            "stacks/catalog/app.yaml",
            "components: {terraform: {app: {metadata: {component: ../../../../outside}, vars: {}}}}\n",
        ),
        (
            "stacks/deploy/dev.yaml",
            "import: [catalog/app]\nvars: {stage: dev}\n",
        ),
    ];
    let f = fixture(&[("atmos.yaml", ATMOS_A), base[0], base[1]]);
    let e = f
        .describe("terraform", "app", "dev")
        .expect_err("outside")
        .to_string();
    assert!(e.contains("is not inside the project"), "{e}");
    let f = fixture(&[
        (
            "atmos.yaml",
            &ATMOS_A.replace(
                "base_path: components/terraform",
                "base_path: /tmp/elsewhere",
            ),
        ),
        (
            "stacks/deploy/dev.yaml",
            "vars: {stage: dev}\ncomponents: {terraform: {app: {vars: {}}}}\n",
        ),
    ]);
    let e = f
        .describe("terraform", "app", "dev")
        .expect_err("absolute")
        .to_string();
    assert!(e.contains("is not inside the project"), "{e}");

    let deep = format!(
        "vars:\n  stage: dev\n  deep: {}\ncomponents: {{terraform: {{app: {{vars: {{}}}}}}}}\n",
        "[".repeat(200)
    );
    let f = fixture(&[("atmos.yaml", ATMOS_A), ("stacks/deploy/dev.yaml", &deep)]);
    let e = f
        .describe("terraform", "app", "dev")
        .expect_err("deep")
        .to_string();
    assert!(e.contains("nest deeper than 128 levels"), "{e}");

    let mut many = format!(
        "vars:\n  stage: dev\n  s: {}\ncomponents:\n  terraform:\n    app:\n      vars:\n",
        "x".repeat(60_000)
    );
    for i in 0..200 {
        many.push_str(&format!("        k{i}: '{{{{ .vars.s }}}}'\n"));
    }
    let f = fixture(&[("atmos.yaml", ATMOS_A), ("stacks/deploy/dev.yaml", &many)]);
    let e = f
        .describe("terraform", "app", "dev")
        .expect_err("big")
        .to_string();
    assert!(e.contains("produce more than 8 MiB in all"), "{e}");

    // `!env`: the signing key is never read, whatever the allow-list says; a variable the
    // allow-list does not name is an error, not a silent default.
    for (value, want) in [
        ("!env ATMOS_SIGNING_KEY", "which is never read"),
        ("!env HOME", "does not allow"),
    ] {
        let f = fixture(&[
            (
                "atmos.yaml",
                &format!("{ATMOS_A}processing:\n  env: [\"ATMOS_*\"]\n"),
            ),
            (
                "stacks/deploy/dev.yaml",
                &format!(
                    "vars: {{stage: dev}}\ncomponents: {{terraform: {{app: {{env: {{K: {value}}}}}}}}}\n"
                ),
            ),
        ]);
        let e = f
            .describe("terraform", "app", "dev")
            .expect_err(value)
            .to_string();
        assert!(e.contains(want), "{value}: {e}");
    }
}
