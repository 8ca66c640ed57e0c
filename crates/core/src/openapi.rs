//! OpenAPI schemas (feature `openapi`) for what the service's API carries but cannot derive: the
//! hex strings alloy's types serialize to, and the policy's own value types (`Token`, `Amount`,
//! `Seconds`), whose serde impls are written by hand. Every other type derives `ToSchema`
//! beside its serde derives, so the document follows the types.

use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr,
        schema::{ObjectBuilder, OneOfBuilder, Schema, Type},
    },
};

use crate::{
    Salt,
    policy::{Amount, Seconds, Token},
};

fn string(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([example])
        .into()
}

/// Declares a schema-only type: a string of the given pattern, named `$name` in the document.
macro_rules! hex_string {
    ($name:ident, $description:literal, $pattern:literal, $example:literal) => {
        #[doc = $description]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string($description, $pattern, $example)
            }
        }

        impl ToSchema for $name {}
    };
}

hex_string!(
    HexAddress,
    "A 20-byte address, 0x-prefixed hex (any case).",
    "^0x[0-9a-fA-F]{40}$",
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
);
hex_string!(
    Hex32,
    "32 bytes, 0x-prefixed hex (a hash, a commitment, a nonce).",
    "^0x[0-9a-fA-F]{64}$",
    "0x5f16f4c7f149ac4f9510d9cf8cf384038ad348b3bcdc01915f95de12df9d1b02"
);
hex_string!(
    HexU256,
    "An unsigned 256-bit integer as 0x-prefixed hex (decimal strings are accepted too).",
    "^0x[0-9a-fA-F]{1,64}$",
    "0x2386f26fc10000"
);
hex_string!(
    HexBytes,
    "Bytes, 0x-prefixed hex.",
    "^0x([0-9a-fA-F]{2})*$",
    "0xa9059cbb"
);

/// A secp256k1 signature as alloy writes it: `r`, `s` and the recovery parity.
pub struct SignatureJson;

impl PartialSchema for SignatureJson {
    fn schema() -> RefOr<Schema> {
        let parity = || string("0x0 or 0x1", "^0x[01]$", "0x1");
        ObjectBuilder::new()
            .description(Some(
                "A secp256k1 signature (low-s): r, s and yParity (v is accepted as its twin)",
            ))
            .property("r", HexU256::schema())
            .required("r")
            .property("s", HexU256::schema())
            .required("s")
            .property("yParity", parity())
            .required("yParity")
            .property("v", parity())
            .into()
    }
}

impl ToSchema for SignatureJson {
    fn name() -> std::borrow::Cow<'static, str> {
        "Signature".into()
    }
}

impl PartialSchema for Token {
    fn schema() -> RefOr<Schema> {
        string(
            "`native` (the chain's coin) or an ERC-20 contract address",
            "^(native|0x[0-9a-fA-F]{40})$",
            "native",
        )
    }
}

impl ToSchema for Token {}

impl PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "An amount in the token's base units: a decimal string (written so), 0x hex, or an integer",
            ))
            .item(string("decimal or 0x hex", "^([0-9]{1,78}|0x[0-9a-fA-F]{1,64})$", "1000000"))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
            .into()
    }
}

impl ToSchema for Amount {}

impl PartialSchema for Seconds {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "A duration: seconds (written so), or a text like 90s, 30m, 1h, 7d",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(string("a number and a unit", "^[0-9]{1,15}[smhd]$", "1h"))
            .into()
    }
}

impl ToSchema for Seconds {}

impl PartialSchema for Salt {
    fn schema() -> RefOr<Schema> {
        Hex32::schema()
    }
}

impl ToSchema for Salt {}
