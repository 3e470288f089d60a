//! `schema/federation.graphql` stays consistent with the nodes' subgraph
//! (`schema/subgraph.graphql`) and with the fields the gateway answers
//! itself: same types, same fields, same arguments and defaults. The
//! federation schema adds only the gateway's fields and the routing
//! directives; it drops only `_service` and `_entities`.

use std::collections::{BTreeMap, BTreeSet};

use apollo_compiler::ast::{Definition, Document, FieldDefinition, InputValueDefinition};
use apollo_compiler::{Node, name};
use exchange_gateway::routing::{FEDERATION_SDL, ROUTING_DEFINITIONS};

/// The gateway's own types (answered by `exchange_gateway::directory`).
const GATEWAY_TYPES: &[&str] = &["MemberAgency", "NodeHealth", "NodeStatus", "CircuitState"];
/// The subgraph's federation plumbing, not offered to clients.
const FEDERATION_ROOT_FIELDS: &[&str] = &["_service", "_entities"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Object(BTreeMap<String, String>),
    Input(BTreeMap<String, String>),
    Enum(BTreeSet<String>),
    Scalar,
    Other(&'static str),
}

fn input_value(v: &InputValueDefinition) -> String {
    match &v.default_value {
        Some(d) => format!("{}: {} = {}", v.name, v.ty, d),
        None => format!("{}: {}", v.name, v.ty),
    }
}

fn field(f: &FieldDefinition) -> String {
    let args: Vec<String> = f.arguments.iter().map(|a| input_value(a)).collect();
    format!("({}): {}", args.join(", "), f.ty)
}

fn fields(list: &[Node<FieldDefinition>]) -> BTreeMap<String, String> {
    list.iter()
        .map(|f| (f.name.to_string(), field(f)))
        .collect()
}

/// Every named type of an SDL document by its shape, ignoring descriptions
/// and directives; extensions are merged into their types.
fn shapes(sdl: &str, path: &str) -> BTreeMap<String, Shape> {
    let doc = Document::parse(sdl, path)
        .unwrap_or_else(|e| panic!("{path} does not parse: {}", e.errors));
    let mut out: BTreeMap<String, Shape> = BTreeMap::new();
    let mut merge_object = |name: String, more: BTreeMap<String, String>| match out.get_mut(&name) {
        Some(Shape::Object(existing)) => existing.extend(more),
        _ => {
            out.insert(name, Shape::Object(more));
        }
    };
    let mut rest = Vec::new();
    for def in &doc.definitions {
        match def {
            Definition::ObjectTypeDefinition(o) => {
                merge_object(o.name.to_string(), fields(&o.fields))
            }
            Definition::ObjectTypeExtension(o) => {
                merge_object(o.name.to_string(), fields(&o.fields))
            }
            other => rest.push(other.clone()),
        }
    }
    for def in rest {
        let (name, shape) = match &def {
            Definition::InputObjectTypeDefinition(i) => (
                i.name.to_string(),
                Shape::Input(
                    i.fields
                        .iter()
                        .map(|f| (f.name.to_string(), input_value(f)))
                        .collect(),
                ),
            ),
            Definition::EnumTypeDefinition(e) => (
                e.name.to_string(),
                Shape::Enum(e.values.iter().map(|v| v.value.to_string()).collect()),
            ),
            Definition::ScalarTypeDefinition(s) => (s.name.to_string(), Shape::Scalar),
            Definition::InterfaceTypeDefinition(i) => {
                (i.name.to_string(), Shape::Other("interface"))
            }
            Definition::UnionTypeDefinition(u) => (u.name.to_string(), Shape::Other("union")),
            _ => continue,
        };
        out.insert(name, shape);
    }
    out
}

fn is_federation_plumbing(name: &str) -> bool {
    name.starts_with('_') || name.starts_with("link__") || name.starts_with("federation__")
}

#[test]
fn the_federation_schema_is_the_subgraph_plus_the_gateways_fields() {
    let subgraph_sdl = exchange_schema::SUBGRAPH_SDL;
    assert!(
        !subgraph_sdl.trim().is_empty(),
        "schema/subgraph.graphql is empty: generate it with `cargo run -p agency-node -- schema > schema/subgraph.graphql`"
    );
    let subgraph = shapes(subgraph_sdl, "schema/subgraph.graphql");
    let federation = shapes(FEDERATION_SDL, "schema/federation.graphql");
    let gateway_sdl = exchange_gateway::directory::sdl();
    let gateway = shapes(&gateway_sdl, "gateway directory");
    let mut problems = Vec::new();

    // Every subgraph type is offered unchanged (Query and Mutation: minus the
    // federation plumbing, plus the gateway's fields).
    for (name, shape) in &subgraph {
        if is_federation_plumbing(name) {
            continue;
        }
        let Some(offered) = federation.get(name) else {
            problems.push(format!("type {name} of the subgraph is missing"));
            continue;
        };
        let expected = match (name.as_str(), shape) {
            ("Query", Shape::Object(f)) => {
                let mut f = f.clone();
                f.retain(|k, _| !FEDERATION_ROOT_FIELDS.contains(&k.as_str()));
                if let Some(Shape::Object(g)) = gateway.get("Query") {
                    f.extend(g.clone());
                }
                Shape::Object(f)
            }
            (_, s) => s.clone(),
        };
        if offered != &expected {
            problems.push(format!(
                "type {name} differs:\n  subgraph: {expected:?}\n  federation: {offered:?}"
            ));
        }
    }
    // Every other type of the federation schema is the gateway's own, and
    // matches what the gateway answers.
    for (name, shape) in &federation {
        if subgraph.contains_key(name) {
            continue;
        }
        if ROUTING_DEFINITIONS.contains(&name.as_str()) {
            continue;
        }
        if !GATEWAY_TYPES.contains(&name.as_str()) {
            problems.push(format!(
                "type {name} is neither the subgraph's nor the gateway's"
            ));
            continue;
        }
        if gateway.get(name) != Some(shape) {
            problems.push(format!(
                "gateway type {name} differs:\n  gateway: {:?}\n  federation: {shape:?}",
                gateway.get(name)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_root_field_declares_where_it_goes() {
    let doc = Document::parse(FEDERATION_SDL, "schema/federation.graphql").expect("parses");
    for def in &doc.definitions {
        let Definition::ObjectTypeDefinition(o) = def else {
            continue;
        };
        if o.name != name!("Query") && o.name != name!("Mutation") {
            continue;
        }
        for f in &o.fields {
            let rules = f
                .directives
                .iter()
                .filter(|d| matches!(d.name.as_str(), "route" | "scatter" | "gateway"))
                .count();
            assert_eq!(
                rules, 1,
                "{}.{} must carry exactly one routing directive",
                o.name, f.name
            );
        }
    }
    exchange_gateway::routing::FederationSchema::load().expect("the rules fit the schema");
}
