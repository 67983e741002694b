//! The wasm component face: the WIT world `handler`, implemented once for every [`Kind`].

use std::marker::PhantomData;

use crate::{ErrorCode, Kind};

/// The bindings of `wit/job.wit` (this crate's copy). The export macro is public so that
/// [`export!`](crate::export) can expand it in the kind's crate, which then holds the entry points.
pub mod bindings {
    wit_bindgen::generate!({
        world: "handler",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export_handler",
        default_bindings_module: "kiln_guest::__private::bindings",
        runtime_path: "kiln_guest::__private::wit_bindgen::rt",
    });
}

use bindings::kiln::job::types::ErrorCode as WitErrorCode;

/// Kind `K` as the world's `Guest`: parses params, runs `K`, maps the result onto the WIT types.
/// The input is lent to the kind, never copied; the output bytes are moved.
pub struct Component<K>(PhantomData<K>);

impl<K: Kind> bindings::Guest for Component<K> {
    fn run(params: String, input: Vec<u8>) -> Result<bindings::Output, bindings::JobError> {
        crate::run::<K>(&params, &input)
            .map(|output| bindings::Output {
                media_type: output.media_type,
                data: output.data,
            })
            .map_err(|error| bindings::JobError {
                code: match error.code {
                    ErrorCode::InvalidParams => WitErrorCode::InvalidParams,
                    ErrorCode::InvalidInput => WitErrorCode::InvalidInput,
                    ErrorCode::Internal => WitErrorCode::Internal,
                },
                message: error.message,
            })
    }
}
