//! Parsing of `#[worker(...)]` arguments.

use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
}

/// The arguments accepted by `#[worker]`.
#[derive(Default)]
pub(crate) struct WorkerArgs {
    /// `name = "..."`: the stable name the runtime sends tasks by.
    pub(crate) name: Option<LitStr>,
}

impl Parse for WorkerArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = WorkerArgs::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        while !input.is_empty() {
            if input.peek(kw::name) {
                let key: kw::name = input.parse()?;
                let eq: Token![=] = input.parse()?;
                let value: LitStr = input.parse()?;
                if args.name.is_some() {
                    push(syn::Error::new_spanned(
                        quote::quote!(#key #eq #value),
                        "`name` set multiple times; a worker has one stable name, keep only one \
                         `name = \"...\"`",
                    ));
                } else if value.value().trim().is_empty() {
                    push(syn::Error::new(
                        value.span(),
                        "worker `name` cannot be empty",
                    ));
                } else {
                    args.name = Some(value);
                }
            } else {
                let unknown: proc_macro2::TokenTree = input.parse()?;
                push(syn::Error::new(
                    unknown.span(),
                    format!("unknown worker argument `{unknown}`; expected one of: `name`"),
                ));
                // Skip to the next comma so later arguments are still checked.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}
