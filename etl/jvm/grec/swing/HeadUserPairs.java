package grec.swing;

import java.util.Arrays;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF5;

/**
 * Steps E–G of grec's Swing (etl/transforms/swing.py) for one head user u, in primitive arrays.
 *
 * <p>Input: the head u as {@code n_u << 31 | u} (n_u = |I_u|, u a compact key below 2^31) and the
 * rows (i, tail) of every sampled item i that u leads: tail holds the users after u in S_i, packed
 * the same way. Every (user pair, common item) triple of the pairs u leads is in there once.
 *
 * <p>Per partner v: C_uv = the items whose tail holds v; if |C_uv| >= 2, every item pair i < j of
 * C_uv gains c_uv = w_u w_v / (alpha2 + |C_uv|), w = (alpha1 + n) ^ (-beta_user). The contributions
 * of all of u's partners are summed per item pair here (a hot item pair recurs across partners), so
 * Spark aggregates partial sums, not one row per contribution.
 *
 * <p>Output: struct(pairs: array&lt;long&gt; = i << 31 | j, scores: array&lt;double&gt;, users:
 * array&lt;long&gt; = how many of u's partners gave to the pair). Spark's generic row path would box
 * every triple; here the triples become one sorted long array: {@code idx << 31 | i}, idx the
 * partner's local index, so one primitive sort groups them by partner with items ascending.
 */
public final class HeadUserPairs
        implements UDF5<Long, scala.collection.Seq<Row>, Double, Double, Double, Row> {

    private static final long serialVersionUID = 1L;
    private static final int SHIFT = 31;
    private static final long LOW = (1L << SHIFT) - 1;

    @Override
    public Row call(Long head, scala.collection.Seq<Row> lists, Double alpha1, Double betaUser, Double alpha2) {
        long total = 0;
        for (scala.collection.Iterator<Row> it = lists.iterator(); it.hasNext(); ) {
            total += it.next().getSeq(1).length();
        }
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("Swing head user " + (head & LOW) + " leads " + total
                    + " (user pair, item) triples, more than one array holds: lower max_users_per_item");
        }
        LongIndex partners = new LongIndex(1024);
        long[] triples = new long[(int) total];
        int t = 0;
        for (scala.collection.Iterator<Row> it = lists.iterator(); it.hasNext(); ) {
            Row row = it.next();
            long item = row.getLong(0);
            scala.collection.Seq<Object> tail = row.getSeq(1);
            for (scala.collection.Iterator<Object> v = tail.iterator(); v.hasNext(); ) {
                triples[t++] = ((long) partners.indexOf((Long) v.next()) << SHIFT) | item;
            }
        }
        Arrays.sort(triples);

        double wU = Math.pow(alpha1 + (head >>> SHIFT), -betaUser);
        PairSums sums = new PairSums(Math.min(t, 1 << 16));
        for (int s = 0; s < t; ) {
            long idx = triples[s] >>> SHIFT;
            int e = s + 1;
            while (e < t && (triples[e] >>> SHIFT) == idx) {
                e++;
            }
            int common = e - s;
            if (common >= 2) {
                long nV = partners.keyAt((int) idx) >>> SHIFT;
                double c = wU * Math.pow(alpha1 + nV, -betaUser) / (alpha2 + common);
                for (int a = s; a < e - 1; a++) {
                    long hi = (triples[a] & LOW) << SHIFT;
                    for (int b = a + 1; b < e; b++) {
                        sums.add(hi | (triples[b] & LOW), c);
                    }
                }
            }
            s = e;
        }
        return sums.toRow();
    }

    /** Dense local indices 0, 1, ... for non-negative long keys, in first-seen order (open addressing). */
    static final class LongIndex {
        private long[] slots;   // key + 1; 0 = empty
        private int[] index;
        private long[] keys;
        private int size;

        LongIndex(int capacity) {
            int cap = Integer.highestOneBit(Math.max(4, capacity) * 2 - 1);
            slots = new long[cap];
            index = new int[cap];
            keys = new long[Math.max(4, capacity)];
        }

        int indexOf(long key) {
            int mask = slots.length - 1;
            int h = mix(key) & mask;
            while (true) {
                long s = slots[h];
                if (s == 0) {
                    if (size * 2 >= slots.length) {
                        grow();
                        return indexOf(key);
                    }
                    slots[h] = key + 1;
                    index[h] = size;
                    if (size == keys.length) {
                        keys = Arrays.copyOf(keys, size * 2);
                    }
                    keys[size] = key;
                    return size++;
                }
                if (s == key + 1) {
                    return index[h];
                }
                h = (h + 1) & mask;
            }
        }

        long keyAt(int i) {
            return keys[i];
        }

        private void grow() {
            long[] oldSlots = slots;
            int[] oldIndex = index;
            slots = new long[oldSlots.length * 2];
            index = new int[oldSlots.length * 2];
            for (int k = 0; k < oldSlots.length; k++) {
                if (oldSlots[k] != 0) {
                    int h = freeSlot(slots, oldSlots[k]);
                    slots[h] = oldSlots[k];
                    index[h] = oldIndex[k];
                }
            }
        }
    }

    /** Sum and count per non-negative long key (open addressing, linear probing). */
    static final class PairSums {
        private long[] slots;   // key + 1; 0 = empty
        private double[] sum;
        private long[] count;
        private int size;

        PairSums(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected) * 2 - 1) << 1;
            slots = new long[cap];
            sum = new double[cap];
            count = new long[cap];
        }

        void add(long key, double value) {
            int mask = slots.length - 1;
            int h = mix(key) & mask;
            while (true) {
                long s = slots[h];
                if (s == key + 1) {
                    sum[h] += value;
                    count[h]++;
                    return;
                }
                if (s == 0) {
                    slots[h] = key + 1;
                    sum[h] = value;
                    count[h] = 1;
                    if (++size * 2 > slots.length) {
                        grow();
                    }
                    return;
                }
                h = (h + 1) & mask;
            }
        }

        private void grow() {
            long[] oldSlots = slots;
            double[] oldSum = sum;
            long[] oldCount = count;
            slots = new long[oldSlots.length * 2];
            sum = new double[oldSlots.length * 2];
            count = new long[oldSlots.length * 2];
            for (int k = 0; k < oldSlots.length; k++) {
                if (oldSlots[k] != 0) {
                    int h = freeSlot(slots, oldSlots[k]);
                    slots[h] = oldSlots[k];
                    sum[h] = oldSum[k];
                    count[h] = oldCount[k];
                }
            }
        }

        Row toRow() {
            long[] pairs = new long[size];
            double[] scores = new double[size];
            long[] users = new long[size];
            int o = 0;
            for (int k = 0; k < slots.length; k++) {
                if (slots[k] != 0) {
                    pairs[o] = slots[k] - 1;
                    scores[o] = sum[k];
                    users[o] = count[k];
                    o++;
                }
            }
            return RowFactory.create(pairs, scores, users);
        }
    }

    /** The empty slot where a rehash puts `stored` (a key + 1) in a table with no deletions. */
    static int freeSlot(long[] slots, long stored) {
        int mask = slots.length - 1;
        int h = mix(stored - 1) & mask;
        while (slots[h] != 0) {
            h = (h + 1) & mask;
        }
        return h;
    }

    /** Murmur3's 64-bit finalizer: packed keys share their low bits, so spread all 64 before masking. */
    static int mix(long key) {
        long h = key;
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb33fe1a85ec3L;
        h ^= h >>> 33;
        return (int) h;
    }
}
