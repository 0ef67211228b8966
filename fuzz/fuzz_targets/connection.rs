//! A client/server pair driven by a structure-aware list of operations. Every
//! byte either side writes must be valid frames for its role, no protocol
//! error may occur, and each side must deliver exactly what the other sent.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsproto::fuzzing::{connection, Op as CoreOp};

#[derive(Arbitrary, Debug)]
enum Op {
    SendText {
        client: bool,
        text: String,
    },
    SendBinary {
        client: bool,
        data: Vec<u8>,
    },
    SendFragment {
        client: bool,
        text: bool,
        data: Vec<u8>,
        fin: bool,
    },
    Ping {
        client: bool,
        payload: Vec<u8>,
    },
    Pong {
        client: bool,
        payload: Vec<u8>,
    },
    Close {
        client: bool,
        code: u16,
        reason: String,
    },
    Deliver {
        from_client: bool,
        max_bytes: u16,
    },
    AdvanceTime {
        ms: u16,
    },
    Eof {
        from_client: bool,
    },
}

impl From<Op> for CoreOp {
    fn from(op: Op) -> CoreOp {
        match op {
            Op::SendText { client, text } => CoreOp::SendText { client, text },
            Op::SendBinary { client, data } => CoreOp::SendBinary { client, data },
            Op::SendFragment {
                client,
                text,
                data,
                fin,
            } => CoreOp::SendFragment {
                client,
                text,
                data,
                fin,
            },
            Op::Ping { client, payload } => CoreOp::Ping { client, payload },
            Op::Pong { client, payload } => CoreOp::Pong { client, payload },
            Op::Close {
                client,
                code,
                reason,
            } => CoreOp::Close {
                client,
                code,
                reason,
            },
            Op::Deliver {
                from_client,
                max_bytes,
            } => CoreOp::Deliver {
                from_client,
                max_bytes,
            },
            Op::AdvanceTime { ms } => CoreOp::AdvanceTime { ms },
            Op::Eof { from_client } => CoreOp::Eof { from_client },
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let ops: Vec<CoreOp> = input.ops.into_iter().map(CoreOp::from).collect();
    connection(input.config, &ops);
});
