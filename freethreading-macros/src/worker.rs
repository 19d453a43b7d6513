//! `#[worker]`: validate the function, then expand it into a unit struct that derefs to the
//! function pointer, implements `WorkerFn`, and registers itself in the global registry.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::parse::WorkerArgs;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "#[worker] can only be applied to a free function (`fn name(args) -> T { .. }`)",
            );
            return with_error(item, err);
        }
    };
    let args = syn::parse2::<WorkerArgs>(args);
    let checked = check_signature(&func);
    match (args, checked) {
        (Ok(args), Ok(())) => expand_checked(&args, func),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            with_error(item, a)
        }
        (Err(e), _) | (_, Err(e)) => with_error(item, e),
    }
}

/// Re-emits the user's item unchanged plus the error, so the mistake is reported once.
fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.to_compile_error();
    quote! { #item #err }
}

/// Rejects every shape the runtime cannot call by name with serialised arguments, all at once.
fn check_signature(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new(
            token.span(),
            "#[worker] functions cannot be async; make it a plain `fn` and run the async work \
             inside it (for example with a runtime's `block_on`)",
        ));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new(
            token.span(),
            "#[worker] functions cannot be `unsafe`; wrap the unsafe call in a safe function",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "#[worker] functions cannot declare an ABI; remove `extern`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "#[worker] functions cannot be variadic",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "#[worker] functions cannot be generic: tasks are sent by name, so each worker needs \
             one concrete signature; write one non-generic #[worker] per type",
        ));
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "#[worker] cannot be applied to methods (`self`); make it a free function and \
                 pass the value as an ordinary parameter",
            )),
            FnArg::Typed(pat) => check_type(&pat.ty, Position::Parameter, &mut errors),
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_type(ty, Position::Return, &mut errors);
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            for e in errors {
                first.combine(e);
            }
            Err(first)
        }
    }
}

#[derive(Clone, Copy)]
enum Position {
    Parameter,
    Return,
}

/// Flags the type shapes that can never cross a process boundary by value.
fn check_type(ty: &Type, position: Position, errors: &mut Vec<syn::Error>) {
    let what = match position {
        Position::Parameter => "parameters",
        Position::Return => "return types",
    };
    match ty {
        Type::Reference(reference) => {
            let owned = owned_alternative(&reference.elem);
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "#[worker] {what} cannot borrow: the value may be sent to another process; \
                     take an owned {owned} instead"
                ),
            ));
        }
        Type::ImplTrait(_) => errors.push(syn::Error::new_spanned(
            ty,
            format!(
                "#[worker] {what} cannot be `impl Trait`: the runtime needs one concrete type; \
                 name the type instead"
            ),
        )),
        Type::Paren(inner) => check_type(&inner.elem, position, errors),
        Type::Group(inner) => check_type(&inner.elem, position, errors),
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                check_type(elem, position, errors);
            }
        }
        Type::Ptr(_) => errors.push(syn::Error::new_spanned(
            ty,
            format!(
                "#[worker] {what} cannot be raw pointers: addresses mean nothing in another process"
            ),
        )),
        _ => {}
    }
}

/// The owned type to suggest for a borrowed one.
fn owned_alternative(elem: &Type) -> String {
    match elem {
        Type::Path(path) if path.path.is_ident("str") => "`String`".to_owned(),
        Type::Slice(slice) => {
            let inner = &slice.elem;
            format!("`Vec<{}>`", quote!(#inner).to_string().replace(' ', ""))
        }
        other => format!("`{}`", quote!(#other).to_string().replace(' ', "")),
    }
}

/// The span of the first token of `ty`.
fn first_span(ty: &Type) -> Span {
    ty.to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |token| token.span())
}

fn expand_checked(args: &WorkerArgs, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = &sig.ident;

    // Docs describe the public name; `cfg`s must gate everything we generate; the rest stays on
    // the function body itself.
    let mut doc_attrs = Vec::new();
    let mut cfg_attrs = Vec::new();
    let mut fn_attrs = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("doc") {
            doc_attrs.push(attr);
        } else if attr.path().is_ident("cfg") {
            cfg_attrs.push(attr);
        } else {
            fn_attrs.push(attr);
        }
    }

    let mut param_types = Vec::new();
    let mut inner_inputs = Vec::new();
    for input in &sig.inputs {
        if let FnArg::Typed(pat) = input {
            param_types.push((*pat.ty).clone());
            inner_inputs.push(input.clone());
        }
    }
    let arg_idents: Vec<_> = (0..param_types.len())
        .map(|i| format_ident!("__freethreading_arg{}", i))
        .collect();
    let output_type: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let stable_name = match &args.name {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#name)
        )),
    };
    let constness = &sig.constness;
    let body_fn = format_ident!("__freethreading_body");
    // The associated types carry the spans of the user's signature, so that errors about them
    // (a parameter type without `Serialize`/`Deserialize`, a private type in a `pub` worker)
    // point at the parameter list or the return type rather than at `#[worker]`.
    let params_span = sig.paren_token.span.join();
    let output_span = match &sig.output {
        ReturnType::Default => sig.ident.span(),
        ReturnType::Type(_, ty) => first_span(ty),
    };
    let target_type = quote_spanned! {params_span=>
        type Target = fn(#(#param_types),*) -> #output_type;
    };
    let args_assoc = quote_spanned! {params_span=>
        type Args = (#(#param_types,)*);
    };
    let output_assoc = quote_spanned! {output_span=>
        type Output = #output_type;
    };

    quote! {
        #(#cfg_attrs)*
        #(#doc_attrs)*
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #name;

        #(#cfg_attrs)*
        const _: () = {
            #(#fn_attrs)*
            #constness fn #body_fn(#(#inner_inputs),*) -> #output_type #block

            #[automatically_derived]
            impl ::core::ops::Deref for #name {
                #target_type

                #[inline]
                fn deref(&self) -> &Self::Target {
                    const BODY: fn(#(#param_types),*) -> #output_type = #body_fn;
                    &BODY
                }
            }

            #[automatically_derived]
            impl ::freethreading::__private::WorkerFn for #name {
                const NAME: &'static str = #stable_name;
                #args_assoc
                #output_assoc

                #[inline]
                fn call(args: Self::Args) -> Self::Output {
                    let (#(#arg_idents,)*) = args;
                    #body_fn(#(#arg_idents),*)
                }
            }

            ::freethreading::__private::inventory::submit! {
                ::freethreading::__private::Registration::new::<#name>(
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    ::core::file!(),
                    ::core::line!(),
                )
            }
        };
    }
}
