package io.moecluster.core.sampling;

/**
 * Orders token ids by their logit, in place on primitive arrays, for the sampler's hot path.
 *
 * <p>A token ranks above another if its logit is larger, or equal with a lower id; the tie rule
 * makes every result independent of the algorithm's visiting order, so sampling is reproducible.
 * Both operations use a binary heap whose root is the lowest-ranked element: no recursion, no
 * allocation, O(n log k) to select and O(n log n) to sort. Logits must not be NaN.
 */
final class LogitOrder {
    private LogitOrder() {}

    static boolean ranksAbove(float[] logits, int a, int b) {
        float la = logits[a];
        float lb = logits[b];
        return la > lb || (la == lb && a < b);
    }

    /**
     * Writes the ids of the {@code k} highest-ranked tokens among {@code 0..n-1} into
     * {@code out[0..k)}, in no particular order.
     *
     * @return the number written, {@code min(k, n)}
     */
    static int selectTopK(float[] logits, int n, int k, int[] out) {
        int size = Math.min(k, n);
        for (int i = 0; i < size; i++) {
            out[i] = i;
        }
        for (int i = size / 2 - 1; i >= 0; i--) {
            siftDown(logits, out, size, i);
        }
        // out[0] is the weakest kept token; anything ranking above it takes its place.
        for (int id = size; id < n; id++) {
            if (ranksAbove(logits, id, out[0])) {
                out[0] = id;
                siftDown(logits, out, size, 0);
            }
        }
        return size;
    }

    /** Sorts {@code ids[0..n)} so that the highest-ranked token comes first (heapsort). */
    static void sortDescending(float[] logits, int[] ids, int n) {
        for (int i = n / 2 - 1; i >= 0; i--) {
            siftDown(logits, ids, n, i);
        }
        // Moving the weakest remaining token to the end each time leaves the array best-first.
        for (int end = n - 1; end > 0; end--) {
            int weakest = ids[0];
            ids[0] = ids[end];
            ids[end] = weakest;
            siftDown(logits, ids, end, 0);
        }
    }

    /** Restores "every parent ranks below its children" for the subtree at {@code i}. */
    private static void siftDown(float[] logits, int[] heap, int size, int i) {
        int id = heap[i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= size) {
                break;
            }
            int right = child + 1;
            if (right < size && ranksAbove(logits, heap[child], heap[right])) {
                child = right;
            }
            if (!ranksAbove(logits, id, heap[child])) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = id;
    }
}
