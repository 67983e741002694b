//! Minimum s-t cut by the Boykov-Kolmogorov max-flow algorithm (Boykov & Kolmogorov, "An Experimental
//! Comparison of Min-Cut/Max-Flow Algorithms for Energy Minimization in Vision", PAMI 2004), the one
//! GrabCut and OpenCV use: two search trees, grown from the source and the sink, are kept between
//! augmentations instead of searching afresh, which suits the short paths of image grids.
//!
//! No crate on crates.io offers it in pure Rust in a maintained form (graph libraries have Dinic or
//! Edmonds-Karp, which are several times slower on 8-connected grids), hence this module. The graph is
//! stored compactly for ~1M nodes: arcs in one array grouped by tail (CSR), each arc knowing its reverse
//! ("sister"), and a node's two terminal links folded into one signed residual capacity (`tr_cap` > 0:
//! to the source, < 0: to the sink), the shared part being flow already pushed.
//!
//! Capacities are `f32`. Every augmentation subtracts the path's bottleneck, which is one of the residual
//! capacities on it, so at least one arc becomes exactly zero and the algorithm terminates as with
//! integers.

use std::collections::VecDeque;

/// `parent` values that are not arcs.
const FREE: u32 = u32::MAX;
const TERMINAL: u32 = u32::MAX - 1;
const ORPHAN: u32 = u32::MAX - 2;
const INFINITE_DIST: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// The arc from this node to its parent in its tree, or [`FREE`], [`TERMINAL`], [`ORPHAN`].
    parent: u32,
    /// Time stamp of the last time `dist` was known to be right.
    ts: u32,
    /// Distance to the tree's terminal, valid when `ts` is recent.
    dist: u32,
    /// Residual capacity to the source (> 0) or from the sink (< 0).
    tr_cap: f32,
    /// Which tree the node is in (meaningful when `parent != FREE`).
    sink: bool,
    /// Whether the node is in the active queue.
    queued: bool,
}

#[derive(Debug, Clone, Copy)]
struct Arc {
    head: u32,
    sister: u32,
    r_cap: f32,
}

/// A graph being built: nodes `0..n`, edges added in any order.
#[derive(Debug, Default)]
pub struct Builder {
    nodes: u32,
    edges: Vec<(u32, u32, f32, f32)>,
}

impl Builder {
    pub fn new(nodes: u32, edges_hint: usize) -> Self {
        Builder {
            nodes,
            edges: Vec::with_capacity(edges_hint),
        }
    }

    /// An edge with capacity `cap` from `i` to `j` and `rev_cap` from `j` to `i`.
    pub fn add_edge(&mut self, i: u32, j: u32, cap: f32, rev_cap: f32) {
        debug_assert!(i < self.nodes && j < self.nodes && i != j);
        self.edges.push((i, j, cap, rev_cap));
    }

    /// Lays the arcs out grouped by tail. Terminal capacities start at zero.
    pub fn build(self) -> Graph {
        let n = self.nodes as usize;
        let mut first = vec![0u32; n + 1];
        for &(i, j, _, _) in &self.edges {
            first[i as usize + 1] += 1;
            first[j as usize + 1] += 1;
        }
        for k in 0..n {
            first[k + 1] += first[k];
        }
        let mut fill = first.clone();
        let blank = Arc {
            head: 0,
            sister: 0,
            r_cap: 0.0,
        };
        let mut arcs = vec![blank; self.edges.len() * 2];
        for &(i, j, cap, rev_cap) in &self.edges {
            let a = fill[i as usize];
            fill[i as usize] += 1;
            let b = fill[j as usize];
            fill[j as usize] += 1;
            arcs[a as usize] = Arc {
                head: j,
                sister: b,
                r_cap: cap,
            };
            arcs[b as usize] = Arc {
                head: i,
                sister: a,
                r_cap: rev_cap,
            };
        }
        // The edge list goes before the copy of the capacities is made: the peak is the larger of the two.
        drop(self.edges);
        let capacities = arcs.iter().map(|a| a.r_cap).collect();
        let node = Node {
            parent: FREE,
            ts: 0,
            dist: 0,
            tr_cap: 0.0,
            sink: false,
            queued: false,
        };
        Graph {
            nodes: vec![node; n],
            first,
            arcs,
            capacities,
            active: VecDeque::new(),
            orphans: VecDeque::new(),
            time: 0,
            flow: 0.0,
        }
    }
}

/// A graph ready for [`Graph::maxflow`]; [`Graph::reset`] makes it reusable with new terminal
/// capacities, the arcs' capacities restored.
#[derive(Debug)]
pub struct Graph {
    nodes: Vec<Node>,
    /// Arcs of node `i` are `arcs[first[i]..first[i + 1]]`.
    first: Vec<u32>,
    arcs: Vec<Arc>,
    /// The arcs' capacities as built, for [`Graph::reset`].
    capacities: Vec<f32>,
    active: VecDeque<u32>,
    orphans: VecDeque<u32>,
    time: u32,
    flow: f64,
}

impl Graph {
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Restores every arc's capacity and clears the terminal links and the flow.
    pub fn reset(&mut self) {
        for (arc, &cap) in self.arcs.iter_mut().zip(&self.capacities) {
            arc.r_cap = cap;
        }
        for node in &mut self.nodes {
            node.tr_cap = 0.0;
        }
        self.flow = 0.0;
    }

    /// Adds capacity `source` from the source to `i` and `sink` from `i` to the sink.
    pub fn add_tweights(&mut self, i: u32, source: f32, sink: f32) {
        let node = &mut self.nodes[i as usize];
        let delta = node.tr_cap;
        let (source, sink) = if delta > 0.0 {
            (source + delta, sink)
        } else {
            (source, sink - delta)
        };
        self.flow += f64::from(source.min(sink));
        node.tr_cap = source - sink;
    }

    /// Whether `i` is on the source side of the minimum cut found by the last [`Graph::maxflow`]: the
    /// nodes the source still reaches through unsaturated arcs. The rest are on the sink side.
    pub fn is_source(&self, i: u32) -> bool {
        let node = &self.nodes[i as usize];
        node.parent != FREE && !node.sink
    }

    /// Computes the maximum flow, whose value it returns; [`Graph::is_source`] then gives the cut.
    pub fn maxflow(&mut self) -> f64 {
        self.init_trees();
        let mut current: Option<u32> = None;
        loop {
            let i = match current.take() {
                Some(i) if self.nodes[i as usize].parent != FREE => i,
                _ => match self.next_active() {
                    Some(i) => i,
                    None => break,
                },
            };
            if let Some(middle) = self.grow(i) {
                // Kolmogorov's trick: the node that found a path probably finds the next one too.
                self.time = self.time.wrapping_add(1);
                self.augment(middle);
                self.adopt_orphans();
                current = Some(i);
            }
        }
        self.flow
    }

    fn init_trees(&mut self) {
        self.active.clear();
        self.orphans.clear();
        self.time = 0;
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            node.queued = false;
            node.ts = 0;
            if node.tr_cap != 0.0 {
                node.sink = node.tr_cap < 0.0;
                node.parent = TERMINAL;
                node.dist = 1;
                self.activate(i as u32);
            } else {
                node.parent = FREE;
            }
        }
    }

    fn activate(&mut self, i: u32) {
        let node = &mut self.nodes[i as usize];
        if !node.queued {
            node.queued = true;
            self.active.push_back(i);
        }
    }

    /// The next active node still in a tree.
    fn next_active(&mut self) -> Option<u32> {
        while let Some(i) = self.active.pop_front() {
            let node = &mut self.nodes[i as usize];
            node.queued = false;
            if node.parent != FREE {
                return Some(i);
            }
        }
        None
    }

    /// Grows `i`'s tree by its free neighbours; returns the arc from the source tree to the sink tree
    /// when it meets the other tree.
    fn grow(&mut self, i: u32) -> Option<u32> {
        let Node { sink, ts, dist, .. } = self.nodes[i as usize];
        for a in self.first[i as usize]..self.first[i as usize + 1] {
            let arc = self.arcs[a as usize];
            // The residual capacity in the tree's direction of flow: away from the source, to the sink.
            let cap = if sink {
                self.arcs[arc.sister as usize].r_cap
            } else {
                arc.r_cap
            };
            if cap <= 0.0 {
                continue;
            }
            let j = arc.head;
            let other = &mut self.nodes[j as usize];
            if other.parent == FREE {
                other.sink = sink;
                other.parent = arc.sister;
                other.ts = ts;
                other.dist = dist + 1;
                self.activate(j);
            } else if other.sink != sink {
                return Some(if sink { arc.sister } else { a });
            } else if other.ts <= ts && other.dist > dist {
                // A shorter path to the terminal through `i`: keeps the trees shallow.
                other.parent = arc.sister;
                other.ts = ts;
                other.dist = dist + 1;
            }
        }
        None
    }

    /// Pushes the bottleneck along source → tail(middle) → head(middle) → sink.
    fn augment(&mut self, middle: u32) {
        let mid = self.arcs[middle as usize];
        let tail = self.arcs[mid.sister as usize].head;
        let mut bottleneck = mid.r_cap;
        // The source side: flow runs from each parent down to its child.
        let mut i = tail;
        loop {
            let a = self.nodes[i as usize].parent;
            if a == TERMINAL {
                break;
            }
            let arc = self.arcs[a as usize];
            bottleneck = bottleneck.min(self.arcs[arc.sister as usize].r_cap);
            i = arc.head;
        }
        bottleneck = bottleneck.min(self.nodes[i as usize].tr_cap);
        // The sink side: flow runs from each child up to its parent.
        let mut i = mid.head;
        loop {
            let a = self.nodes[i as usize].parent;
            if a == TERMINAL {
                break;
            }
            let arc = self.arcs[a as usize];
            bottleneck = bottleneck.min(arc.r_cap);
            i = arc.head;
        }
        bottleneck = bottleneck.min(-self.nodes[i as usize].tr_cap);

        self.arcs[mid.sister as usize].r_cap += bottleneck;
        self.arcs[middle as usize].r_cap -= bottleneck;
        let mut i = tail;
        loop {
            let a = self.nodes[i as usize].parent;
            if a == TERMINAL {
                break;
            }
            let Arc { head, sister, .. } = self.arcs[a as usize];
            self.arcs[a as usize].r_cap += bottleneck;
            self.arcs[sister as usize].r_cap -= bottleneck;
            if self.arcs[sister as usize].r_cap == 0.0 {
                self.make_orphan_front(i);
            }
            i = head;
        }
        self.nodes[i as usize].tr_cap -= bottleneck;
        if self.nodes[i as usize].tr_cap == 0.0 {
            self.make_orphan_front(i);
        }
        let mut i = mid.head;
        loop {
            let a = self.nodes[i as usize].parent;
            if a == TERMINAL {
                break;
            }
            let Arc { head, sister, .. } = self.arcs[a as usize];
            self.arcs[sister as usize].r_cap += bottleneck;
            self.arcs[a as usize].r_cap -= bottleneck;
            if self.arcs[a as usize].r_cap == 0.0 {
                self.make_orphan_front(i);
            }
            i = head;
        }
        self.nodes[i as usize].tr_cap += bottleneck;
        if self.nodes[i as usize].tr_cap == 0.0 {
            self.make_orphan_front(i);
        }
        self.flow += f64::from(bottleneck);
    }

    fn make_orphan_front(&mut self, i: u32) {
        self.nodes[i as usize].parent = ORPHAN;
        self.orphans.push_front(i);
    }

    fn make_orphan_back(&mut self, i: u32) {
        self.nodes[i as usize].parent = ORPHAN;
        self.orphans.push_back(i);
    }

    fn adopt_orphans(&mut self) {
        while let Some(i) = self.orphans.pop_front() {
            self.adopt(i);
        }
    }

    /// Finds `i` a new parent in its tree whose path to the terminal is intact, the nearest one; or
    /// frees it, orphaning its children and activating the neighbours that may grow into it.
    fn adopt(&mut self, i: u32) {
        let sink = self.nodes[i as usize].sink;
        let (start, end) = (self.first[i as usize], self.first[i as usize + 1]);
        let mut best = FREE;
        let mut best_dist = INFINITE_DIST;
        for a0 in start..end {
            let arc = self.arcs[a0 as usize];
            // The capacity from the would-be parent to `i` (source tree) or from `i` to it (sink tree).
            let cap = if sink {
                arc.r_cap
            } else {
                self.arcs[arc.sister as usize].r_cap
            };
            let j = arc.head;
            let other = self.nodes[j as usize];
            if cap <= 0.0 || other.sink != sink || other.parent == FREE {
                continue;
            }
            let Some(d) = self.origin_distance(j) else {
                continue;
            };
            if d < best_dist {
                best = a0;
                best_dist = d;
            }
            // Stamp the path so later searches stop early.
            let (mut k, mut d) = (j, d);
            while self.nodes[k as usize].ts != self.time {
                let node = &mut self.nodes[k as usize];
                node.ts = self.time;
                node.dist = d;
                d -= 1;
                k = self.arcs[node.parent as usize].head;
            }
        }
        if best != FREE {
            let node = &mut self.nodes[i as usize];
            node.parent = best;
            node.ts = self.time;
            node.dist = best_dist + 1;
            return;
        }
        for a0 in start..end {
            let arc = self.arcs[a0 as usize];
            let j = arc.head;
            let other = self.nodes[j as usize];
            if other.sink != sink || other.parent == FREE {
                continue;
            }
            let cap = if sink {
                arc.r_cap
            } else {
                self.arcs[arc.sister as usize].r_cap
            };
            if cap > 0.0 {
                self.activate(j);
            }
            if other.parent != TERMINAL && other.parent != ORPHAN && self.arcs[other.parent as usize].head == i {
                self.make_orphan_back(j);
            }
        }
        self.nodes[i as usize].parent = FREE;
    }

    /// The distance from `j` to its tree's terminal, or `None` when the path runs into an orphan.
    fn origin_distance(&mut self, j: u32) -> Option<u32> {
        let mut d = 0;
        let mut k = j;
        loop {
            let node = self.nodes[k as usize];
            if node.ts == self.time {
                return Some(d + node.dist);
            }
            d += 1;
            match node.parent {
                TERMINAL => {
                    let node = &mut self.nodes[k as usize];
                    node.ts = self.time;
                    node.dist = 1;
                    return Some(d);
                }
                ORPHAN => return None,
                a => k = self.arcs[a as usize].head,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edmonds-Karp on a dense matrix, for checking.
    fn reference_maxflow(n: usize, edges: &[(usize, usize, f32, f32)], t: &[(f32, f32)]) -> f64 {
        let size = n + 2;
        let (s, k) = (n, n + 1);
        let mut cap = vec![vec![0f64; size]; size];
        for &(i, j, c, r) in edges {
            cap[i][j] += f64::from(c);
            cap[j][i] += f64::from(r);
        }
        for (i, &(src, snk)) in t.iter().enumerate() {
            cap[s][i] += f64::from(src);
            cap[i][k] += f64::from(snk);
        }
        let mut flow = 0.0;
        loop {
            let mut prev = vec![usize::MAX; size];
            prev[s] = s;
            let mut queue = VecDeque::from([s]);
            while let Some(u) = queue.pop_front() {
                for v in 0..size {
                    if prev[v] == usize::MAX && cap[u][v] > 1e-9 {
                        prev[v] = u;
                        queue.push_back(v);
                    }
                }
            }
            if prev[k] == usize::MAX {
                return flow;
            }
            let mut b = f64::INFINITY;
            let mut v = k;
            while v != s {
                b = b.min(cap[prev[v]][v]);
                v = prev[v];
            }
            let mut v = k;
            while v != s {
                cap[prev[v]][v] -= b;
                cap[v][prev[v]] += b;
                v = prev[v];
            }
            flow += b;
        }
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
        fn cap(&mut self) -> f32 {
            if self.next().is_multiple_of(3) {
                0.0
            } else {
                (self.next() % 20) as f32
            }
        }
    }

    fn solve(n: usize, edges: &[(usize, usize, f32, f32)], t: &[(f32, f32)]) -> Graph {
        let mut b = Builder::new(n as u32, edges.len());
        for &(i, j, c, r) in edges {
            b.add_edge(i as u32, j as u32, c, r);
        }
        let mut g = b.build();
        for (i, &(src, snk)) in t.iter().enumerate() {
            g.add_tweights(i as u32, src, snk);
        }
        g
    }

    /// The value of the cut the graph reports, computed from the original capacities.
    fn cut_value(g: &Graph, edges: &[(usize, usize, f32, f32)], t: &[(f32, f32)]) -> f64 {
        let side = |i: usize| g.is_source(i as u32);
        let mut v = 0.0;
        for &(i, j, c, r) in edges {
            if side(i) && !side(j) {
                v += f64::from(c);
            }
            if side(j) && !side(i) {
                v += f64::from(r);
            }
        }
        for (i, &(src, snk)) in t.iter().enumerate() {
            v += f64::from(if side(i) { snk } else { src });
        }
        v
    }

    #[test]
    fn two_nodes_by_hand() {
        // s -3-> 0 -2-> 1 -4-> t, and s -1-> 1: max flow 3 (2 through the edge, 1 straight).
        let edges = [(0, 1, 2.0, 0.0)];
        let t = [(3.0, 0.0), (1.0, 4.0)];
        let mut g = solve(2, &edges, &t);
        assert_eq!(g.maxflow(), 3.0);
        assert!(g.is_source(0), "0 keeps 1 unit from the source");
        assert!(!g.is_source(1));
    }

    #[test]
    fn both_terminal_links_on_one_node_count_as_flow() {
        let mut g = solve(1, &[], &[(5.0, 3.0)]);
        assert_eq!(g.maxflow(), 3.0);
        assert!(g.is_source(0));
    }

    #[test]
    fn random_graphs_match_edmonds_karp_and_the_cut_equals_the_flow() {
        let mut rng = Lcg(7);
        for round in 0..300 {
            let n = 2 + (rng.next() % 30) as usize;
            let m = (rng.next() as usize) % (n * 4);
            let edges: Vec<_> = (0..m)
                .filter_map(|_| {
                    let i = (rng.next() as usize) % n;
                    let j = (rng.next() as usize) % n;
                    (i != j).then(|| (i, j, rng.cap(), rng.cap()))
                })
                .collect();
            let t: Vec<_> = (0..n).map(|_| (rng.cap(), rng.cap())).collect();
            let mut g = solve(n, &edges, &t);
            let flow = g.maxflow();
            let expected = reference_maxflow(n, &edges, &t);
            assert!((flow - expected).abs() < 1e-3, "round {round}: {flow} != {expected}");
            let cut = cut_value(&g, &edges, &t);
            assert!((cut - expected).abs() < 1e-3, "round {round}: cut {cut} != {expected}");
        }
    }

    #[test]
    fn reset_gives_the_same_answer_again() {
        let mut rng = Lcg(11);
        let n = 40;
        let edges: Vec<_> = (0..n - 1).map(|i| (i, i + 1, rng.cap(), rng.cap())).collect();
        let t: Vec<_> = (0..n).map(|_| (rng.cap(), rng.cap())).collect();
        let mut g = solve(n, &edges, &t);
        let first = g.maxflow();
        g.reset();
        for (i, &(src, snk)) in t.iter().enumerate() {
            g.add_tweights(i as u32, src, snk);
        }
        assert_eq!(g.maxflow(), first);
        assert!((first - reference_maxflow(n, &edges, &t)).abs() < 1e-3);
    }

    #[test]
    fn grid_with_fractional_capacities() {
        // A 4-connected grid with non-integral weights, as GrabCut builds.
        let (w, h) = (12usize, 12usize);
        let mut rng = Lcg(3);
        let mut edges = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let c = (rng.next() % 1000) as f32 / 37.0;
                if x + 1 < w {
                    edges.push((i, i + 1, c, c));
                }
                if y + 1 < h {
                    edges.push((i, i + w, c * 0.7, c * 0.7));
                }
            }
        }
        let t: Vec<_> = (0..w * h)
            .map(|_| ((rng.next() % 500) as f32 / 13.0, (rng.next() % 500) as f32 / 11.0))
            .collect();
        let mut g = solve(w * h, &edges, &t);
        let flow = g.maxflow();
        let cut = cut_value(&g, &edges, &t);
        assert!((flow - cut).abs() / cut < 1e-4, "{flow} vs cut {cut}");
        let expected = reference_maxflow(w * h, &edges, &t);
        assert!((flow - expected).abs() / expected < 1e-4, "{flow} vs {expected}");
    }
}
