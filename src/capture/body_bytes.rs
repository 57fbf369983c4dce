//! A response body's bytes kept as they came: every chunk the body gave, one after the other in
//! one buffer, with where each chunk ends in it and when it came (wall clock ns). The botocore
//! capture keeps an InvokeAgent stream's body this way while the caller reads it, each chunk
//! copied once as it passes; the stream's trace is read from it when the stream has ended
//! ([`crate::capture::trace_part`], [`crate::capture::agent_turn`]), where a message takes the
//! time of the chunk that completed it.

/// The size of the blocks the bytes are kept in: a chunk is copied once, into the first block
/// with room for it whole, and never moved (no buffer grown by copying), and a block stays
/// below the allocator's threshold for mapping memory of its own (128 KiB in glibc), so that a
/// stream's blocks reuse freed memory instead of faulting in new pages.
const BLOCK: usize = 64 * 1024;

/// One chunk: the block it is in, where, and when it came.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    block: usize,
    start: usize,
    end: usize,
    at: i64,
}

/// The bytes of a response body, chunk by chunk.
#[derive(Debug, Default)]
pub struct BodyBytes {
    blocks: Vec<Vec<u8>>,
    chunks: Vec<Chunk>,
    len: usize,
}

impl BodyBytes {
    /// The body of `chunks`, each with when it came.
    pub fn of<'c>(chunks: impl IntoIterator<Item = (&'c [u8], i64)>) -> Self {
        let mut body = BodyBytes::default();
        for (chunk, at) in chunks {
            body.push(chunk, at);
        }
        body
    }

    /// Keeps the next chunk of the body, which came at `at`.
    pub fn push(&mut self, chunk: &[u8], at: i64) {
        let room = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= chunk.len());
        if !room {
            self.blocks.push(Vec::with_capacity(chunk.len().max(BLOCK)));
        }
        let index = self.blocks.len() - 1;
        let block = &mut self.blocks[index];
        let start = block.len();
        block.extend_from_slice(chunk);
        self.chunks.push(Chunk {
            block: index,
            start,
            end: block.len(),
            at,
        });
        self.len += chunk.len();
    }

    /// The bytes kept.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each chunk, in the order it came, with when it came.
    pub fn chunks(&self) -> impl Iterator<Item = (&[u8], i64)> + '_ {
        self.chunks
            .iter()
            .map(|c| (&self.blocks[c.block][c.start..c.end], c.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_as_they_were_kept() {
        let mut body = BodyBytes::default();
        assert!(body.is_empty());
        assert_eq!(body.chunks().count(), 0);
        body.push(b"abc", 10);
        body.push(b"", 11);
        body.push(b"de", 12);
        assert_eq!(body.len(), 5);
        let got: Vec<_> = body.chunks().collect();
        assert_eq!(got, [(&b"abc"[..], 10), (&b""[..], 11), (&b"de"[..], 12)]);
        let again = BodyBytes::of(got.iter().copied());
        assert_eq!(again.chunks().collect::<Vec<_>>(), got);
    }

    #[test]
    fn chunks_larger_than_the_room_left_start_a_block_and_stay_whole() {
        let big: Vec<u8> = (0..BLOCK + 10).map(|i| i as u8).collect();
        let mut body = BodyBytes::default();
        let mut want = Vec::new();
        for (i, size) in [1000, BLOCK - 1000, 700, BLOCK + 10, 3]
            .into_iter()
            .enumerate()
        {
            body.push(&big[..size], i as i64);
            want.push((&big[..size], i as i64));
        }
        assert_eq!(body.chunks().collect::<Vec<_>>(), want);
        assert_eq!(body.len(), want.iter().map(|(c, _)| c.len()).sum::<usize>());
        // The first two fill a block; the third starts one, the fourth one of its own size
        // and the fifth another.
        assert_eq!(body.blocks.len(), 4);
    }
}
