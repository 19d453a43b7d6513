//! `#[freethreading::main]` and `#[freethreading::test]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.to_compile_error();
    quote! { #item #err }
}

fn parse_plain_fn(
    args: &TokenStream,
    item: &TokenStream,
    what: &str,
) -> Result<ItemFn, syn::Error> {
    if !args.is_empty() {
        return Err(syn::Error::new(
            args.span(),
            format!("#[freethreading::{what}] takes no arguments"),
        ));
    }
    let func: ItemFn = syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            format!("#[freethreading::{what}] can only be applied to a function"),
        )
    })?;
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(
            token.span(),
            format!(
                "#[freethreading::{what}] functions cannot be async; start your async runtime \
                 inside the function"
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("#[freethreading::{what}] functions take no parameters"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("#[freethreading::{what}] functions cannot be generic"),
        ));
    }
    Ok(func)
}

/// `fn main` → init the runtime first (children serve and exit there), run the body, then wait
/// for non-daemon workers as Python does at interpreter exit.
pub(crate) fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse_plain_fn(&args, &item, "main") {
        Ok(func) => func,
        Err(e) => return with_error(item, e),
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let ident = &sig.ident;
    quote! {
        #(#attrs)*
        #vis fn #ident() -> #output {
            ::freethreading::init();
            let __freethreading_result = (move || -> #output #block)();
            ::freethreading::__private::main_returning();
            __freethreading_result
        }
    }
}

/// `#[freethreading::test]` → a `#[test]` that runs the body once per backend; in a child
/// process spawned for this very test, the same function serves tasks instead.
pub(crate) fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse_plain_fn(&args, &item, "test") {
        Ok(func) => func,
        Err(e) => return with_error(item, e),
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let ident = &sig.ident;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let run = quote_spanned! {ident.span()=>
        ::freethreading::__private::run_test_on_both_backends(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
            || -> #output #block,
        )
    };
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #ident() {
            #run
        }
    }
}
