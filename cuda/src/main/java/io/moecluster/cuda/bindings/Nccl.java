package io.moecluster.cuda.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;

/**
 * NCCL ({@code libnccl.so.2}): unique ids, communicators ({@code ncclCommInitRank}, which takes the
 * 128-byte {@code ncclUniqueId} struct by value), groups, point-to-point send/recv. NCCL refuses
 * two ranks on one GPU, so a single-GPU machine can only form one-rank communicators.
 */
public final class Nccl {
    /** {@code ncclUniqueId}: {@code char internal[128]}, passed by value. */
    public static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(NcclUniqueId.BYTES, JAVA_BYTE).withName("internal"));
    /** ncclDataType_t. */
    public static final int UINT8 = 1;
    public static final int FLOAT32 = 7;
    public static final int BFLOAT16 = 9;

    private static final String[] RESULT_NAMES = {
        "ncclSuccess", "ncclUnhandledCudaError", "ncclSystemError", "ncclInternalError", "ncclInvalidArgument",
        "ncclInvalidUsage", "ncclRemoteError", "ncclInProgress"
    };

    private final NativeLibrary lib;
    private final MethodHandle getVersion;
    private final MethodHandle getUniqueId;
    private final MethodHandle commInitRank;
    private final MethodHandle commDestroy;
    private final MethodHandle groupStart;
    private final MethodHandle groupEnd;
    private final MethodHandle send;
    private final MethodHandle recv;
    private final MethodHandle getErrorString;
    private final MethodHandle getLastError;

    public Nccl(NativeLibrary lib) {
        this.lib = lib;
        getVersion = lib.bind("ncclGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        getUniqueId = lib.bind("ncclGetUniqueId", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        commInitRank = lib.bind("ncclCommInitRank", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT));
        commDestroy = lib.bind("ncclCommDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        groupStart = lib.bind("ncclGroupStart", FunctionDescriptor.of(JAVA_INT));
        groupEnd = lib.bind("ncclGroupEnd", FunctionDescriptor.of(JAVA_INT));
        FunctionDescriptor p2p = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        send = lib.bind("ncclSend", p2p);
        recv = lib.bind("ncclRecv", p2p);
        getErrorString = lib.bind("ncclGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getLastError = lib.bind("ncclGetLastError", FunctionDescriptor.of(ADDRESS, ADDRESS));
    }

    public NativeLibrary library() {
        return lib;
    }

    /** {@code ncclGetVersion}: e.g. 22304 for 2.23.4. */
    public int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check("ncclGetVersion", (int) getVersion.invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** 22304 as "2.23.4" (NCCL 2.9+ encodes major*10000 + minor*100 + patch). */
    public static String versionString(int v) {
        return v / 10000 + "." + (v % 10000) / 100 + "." + v % 100;
    }

    /** {@code ncclGetUniqueId}: made by one rank, given to all (works without a GPU). */
    public NcclUniqueId uniqueId() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(UNIQUE_ID);
            check("ncclGetUniqueId", (int) getUniqueId.invokeExact(out));
            return new NcclUniqueId(out.toArray(JAVA_BYTE));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code ncclCommInitRank(&comm, nranks, id, rank)} on the current device; blocks until every rank joined. */
    public NcclComm initRank(int nranks, NcclUniqueId id, int rank) {
        if (rank < 0 || rank >= nranks) {
            throw new IllegalArgumentException("rank " + rank + " outside 0-" + (nranks - 1));
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            MemorySegment idValue = a.allocate(UNIQUE_ID);
            MemorySegment.copy(id.bytes(), 0, idValue, JAVA_BYTE, 0, NcclUniqueId.BYTES);
            check("ncclCommInitRank(" + nranks + " ranks, rank " + rank + ")",
                    (int) commInitRank.invokeExact(out, nranks, idValue, rank));
            return new NcclComm(this, out.get(ADDRESS, 0), nranks, rank);
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    void destroy(MemorySegment comm) {
        try {
            check("ncclCommDestroy", (int) commDestroy.invokeExact(comm));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    public void groupStart() {
        try {
            check("ncclGroupStart", (int) groupStart.invokeExact());
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    public void groupEnd() {
        try {
            check("ncclGroupEnd", (int) groupEnd.invokeExact());
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code ncclSend} of {@code count} elements of {@code type} at device pointer {@code buf} to {@code peer}. */
    public void send(MemorySegment buf, long count, int type, int peer, NcclComm comm, Stream stream) {
        try {
            check("ncclSend(peer " + peer + ")", (int) send.invokeExact(buf, count, type, peer, comm.ptr(), stream.ptr()));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code ncclRecv} of {@code count} elements of {@code type} into device pointer {@code buf} from {@code peer}. */
    public void recv(MemorySegment buf, long count, int type, int peer, NcclComm comm, Stream stream) {
        try {
            check("ncclRecv(peer " + peer + ")", (int) recv.invokeExact(buf, count, type, peer, comm.ptr(), stream.ptr()));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** An {@code ncclResult_t} as an exception: its name, NCCL's string and its last error message. */
    public void check(String call, int status) {
        if (status != 0) {
            String name = status > 0 && status < RESULT_NAMES.length ? RESULT_NAMES[status] : "ncclResult " + status;
            String detail = errorString(status);
            String last = lastError();
            throw new CudaException(call, status, name, last.isBlank() ? detail : detail + " (" + last + ")");
        }
    }

    public String errorString(int status) {
        try {
            return Cudart.cString((MemorySegment) getErrorString.invokeExact(status), "");
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code ncclGetLastError(NULL)}: the message of the last failure in this process. */
    public String lastError() {
        try {
            return Cudart.cString((MemorySegment) getLastError.invokeExact(MemorySegment.NULL), "").strip();
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }
}
