"""An independent verifier of an ad-hoc, linker-signed Mach-O code signature.

Written from Apple's published layout (xnu's osfmk/kern/cs_blobs.h, the CodeDirectory
format of codesign/Security.framework), not from minild's code. Everything in the
signature is BIG-endian; the Mach-O around it is little-endian.

  LC_CODE_SIGNATURE   linkedit_data_command {cmd 0x1d, cmdsize 16, dataoff, datasize}
  SuperBlob           magic 0xfade0cc0 (CSMAGIC_EMBEDDED_SIGNATURE), length, count,
                      then count BlobIndex {type, offset (from the SuperBlob's start)}
  CodeDirectory       magic 0xfade0c02, length, version, flags, hashOffset, identOffset,
  (slot type 0)       nSpecialSlots, nCodeSlots, codeLimit, hashSize u8, hashType u8,
                      platform u8, pageSize u8 (log2), spare2;
                      >= 0x20100 scatterOffset; >= 0x20200 teamOffset;
                      >= 0x20300 spare3, codeLimit64; >= 0x20400 execSegBase,
                      execSegLimit, execSegFlags; >= 0x20500 runtime, preEncryptOffset;
                      >= 0x20600 linkage fields.
                      Code slot i (0 <= i < nCodeSlots) is the hash of file bytes
                      [i*page, min((i+1)*page, codeLimit)) at hashOffset + i*hashSize;
                      special slot -k (1 <= k <= nSpecialSlots) at hashOffset - k*hashSize
                      is the hash of the blob of type k (2 requirements, 5 entitlements,
                      7 DER entitlements, ...), or zero when there is none.

What is required here (an AssertionError says which check failed):
  * exactly one LC_CODE_SIGNATURE; dataoff 16-byte aligned (ld64 and lld align it to 16;
    codesign_allocate too); the signature inside the file and at its very end
    (dataoff + datasize == file size), and __LINKEDIT the last segment, its file range
    ending exactly there (the kernel and `codesign --verify --strict` want the signature
    last in the file and covered by __LINKEDIT: nothing may follow it unsigned);
  * the SuperBlob's length <= datasize, every BlobIndex inside it, exactly one
    CodeDirectory (no alternate CodeDirectories), no CMS signature blob (0x10000) with
    content -- ad-hoc means unsigned by any certificate;
  * CodeDirectory: version >= 0x20400 (ld64 and lld write 0x20400: execSeg fields), flags
    include CS_ADHOC (0x2) and CS_LINKER_SIGNED (0x20000); hashSize 32, hashType 2
    (SHA-256), pageSize 12 (4 KiB, on arm64 too), platform 0; codeLimit == dataoff (every
    byte before the signature is covered) and codeLimit64 0; nCodeSlots ==
    ceil(codeLimit / 4096); identifier NUL-terminated, non-empty; teamOffset 0 and
    scatterOffset 0; the hash slots inside the CodeDirectory; every code page hash
    (the last page short) recomputed and equal; every special slot zero or the hash of
    the blob of its type; execSegBase == __TEXT's fileoff, execSegLimit == __TEXT's
    filesize and execSegFlags has CS_EXECSEG_MAIN_BINARY (0x1) for an MH_EXECUTE.

verify(path) -> dict of the parsed fields (identifier, version, flags, code_limit,
n_code_slots, n_special_slots, hash_type, page_size, exec_seg_base/limit/flags, ...).
"""

from __future__ import annotations

import hashlib
import struct

CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSMAGIC_REQUIREMENTS = 0xFADE0C01
CSMAGIC_BLOBWRAPPER = 0xFADE0B01
CSSLOT_CODEDIRECTORY = 0
CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000
CSSLOT_SIGNATURESLOT = 0x10000
CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000
CS_HASHTYPE_SHA256 = 2
CS_EXECSEG_MAIN_BINARY = 0x1
LC_CODE_SIGNATURE = 0x1D
LC_SEGMENT_64 = 0x19
MH_MAGIC_64 = 0xFEEDFACF
MH_EXECUTE = 2
PAGE_SHIFT = 12


def _macho(data):
    assert len(data) >= 32, "not a Mach-O: too short"
    magic, _, _, filetype, ncmds, sizeofcmds, flags, _ = struct.unpack_from("<IiiIIIII", data, 0)
    assert magic == MH_MAGIC_64, f"not a 64-bit little-endian Mach-O (magic {magic:#x})"
    assert 32 + sizeofcmds <= len(data), "load commands past the end of the file"
    sigs, segs = [], []
    off = 32
    for i in range(ncmds):
        assert off + 8 <= 32 + sizeofcmds, f"load command {i} past sizeofcmds"
        cmd, size = struct.unpack_from("<II", data, off)
        assert size >= 8 and off + size <= 32 + sizeofcmds, f"load command {i}: bad cmdsize {size}"
        if cmd == LC_CODE_SIGNATURE:
            assert size == 16, f"LC_CODE_SIGNATURE cmdsize {size}, want 16"
            sigs.append(struct.unpack_from("<II", data, off + 8))
        elif cmd == LC_SEGMENT_64:
            name, vmaddr, vmsize, fileoff, filesize = struct.unpack_from("<16sQQQQ", data, off + 8)
            segs.append(dict(name=name.split(b"\0")[0].decode(), fileoff=fileoff, filesize=filesize))
        off += size
    return filetype, sigs, segs


def verify(path) -> dict:
    """Check the ad-hoc signature of the Mach-O at path against its contents (see the
    module docstring); the parsed fields, or an AssertionError naming the mismatch."""
    with open(path, "rb") as f:
        data = f.read()
    filetype, sigs, segs = _macho(data)
    assert len(sigs) == 1, f"{len(sigs)} LC_CODE_SIGNATURE commands, want exactly 1"
    dataoff, datasize = sigs[0]
    assert dataoff % 16 == 0, f"the signature's dataoff {dataoff:#x} is not 16-byte aligned"
    assert dataoff + datasize <= len(data), (
        f"the signature [{dataoff:#x}, {dataoff + datasize:#x}) runs past the end of the file ({len(data):#x})")
    assert dataoff + datasize == len(data), (
        f"the signature ends at {dataoff + datasize:#x}, not at the end of the file ({len(data):#x})")
    le = [s for s in segs if s["name"] == "__LINKEDIT"]
    assert le, "no __LINKEDIT segment"
    le = le[0]
    last = max(segs, key=lambda s: s["fileoff"] + s["filesize"])
    assert last is le, f"__LINKEDIT is not the last segment in the file ({last['name']} is)"
    assert le["fileoff"] <= dataoff and le["fileoff"] + le["filesize"] == dataoff + datasize, (
        f"__LINKEDIT [{le['fileoff']:#x}, {le['fileoff'] + le['filesize']:#x}) does not end with the signature "
        f"[{dataoff:#x}, {dataoff + datasize:#x})")

    sig = data[dataoff:dataoff + datasize]
    assert len(sig) >= 12, "the signature is shorter than a SuperBlob header"
    magic, length, count = struct.unpack_from(">III", sig, 0)
    assert magic == CSMAGIC_EMBEDDED_SIGNATURE, f"SuperBlob magic {magic:#x}, want {CSMAGIC_EMBEDDED_SIGNATURE:#x}"
    assert 12 + 8 * count <= length <= datasize, f"SuperBlob length {length} (count {count}), datasize {datasize}"
    blobs = {}
    for k in range(count):
        typ, boff = struct.unpack_from(">II", sig, 12 + 8 * k)
        assert 12 + 8 * count <= boff and boff + 8 <= length, (
            f"blob {k} (type {typ:#x}) at {boff} is outside the SuperBlob")
        bmagic, blen = struct.unpack_from(">II", sig, boff)
        assert blen >= 8 and boff + blen <= length, (
            f"blob {k} (type {typ:#x}): length {blen} runs past the SuperBlob")
        assert typ not in blobs, f"two blobs of type {typ:#x}"
        blobs[typ] = (bmagic, sig[boff:boff + blen])
    assert CSSLOT_CODEDIRECTORY in blobs, "no CodeDirectory (slot 0)"
    assert not any(CSSLOT_ALTERNATE_CODEDIRECTORIES <= t < CSSLOT_ALTERNATE_CODEDIRECTORIES + 5 for t in blobs), \
        "alternate CodeDirectories: not expected from a linker signature"
    if CSSLOT_SIGNATURESLOT in blobs:
        bmagic, b = blobs[CSSLOT_SIGNATURESLOT]
        assert bmagic == CSMAGIC_BLOBWRAPPER and len(b) == 8, "a CMS signature: not an ad-hoc signature"

    cmagic, cd = blobs[CSSLOT_CODEDIRECTORY]
    assert cmagic == CSMAGIC_CODEDIRECTORY, f"CodeDirectory magic {cmagic:#x}, want {CSMAGIC_CODEDIRECTORY:#x}"
    assert len(cd) >= 44, "CodeDirectory shorter than its fixed part"
    (_, cdlen, version, flags, hash_off, ident_off, n_special, n_code, code_limit, hash_size, hash_type,
     platform, page_shift, _) = struct.unpack_from(">IIIIIIIIIBBBBI", cd, 0)
    out = dict(dataoff=dataoff, datasize=datasize, superblob_length=length, blob_types=sorted(blobs),
               version=version, flags=flags, hash_offset=hash_off, ident_offset=ident_off,
               n_special_slots=n_special, n_code_slots=n_code, code_limit=code_limit, hash_size=hash_size,
               hash_type=hash_type, platform=platform, page_size=page_shift)
    assert version >= 0x20400, f"CodeDirectory version {version:#x} < 0x20400 (no execSeg fields)"
    assert len(cd) >= 88, f"CodeDirectory version {version:#x} but only {len(cd)} bytes (want >= 88)"
    scatter, team, _, code_limit64, es_base, es_limit, es_flags = struct.unpack_from(">IIIQQQQ", cd, 44)
    out.update(scatter_offset=scatter, team_offset=team, code_limit64=code_limit64, exec_seg_base=es_base,
               exec_seg_limit=es_limit, exec_seg_flags=es_flags)
    assert flags & CS_ADHOC, f"CodeDirectory flags {flags:#x} lack CS_ADHOC (0x2)"
    assert flags & CS_LINKER_SIGNED, f"CodeDirectory flags {flags:#x} lack CS_LINKER_SIGNED (0x20000)"
    assert hash_size == 32, f"hashSize {hash_size}, want 32"
    assert hash_type == CS_HASHTYPE_SHA256, f"hashType {hash_type}, want 2 (SHA-256)"
    assert page_shift == PAGE_SHIFT, f"pageSize 2^{page_shift}, want 2^12 (4 KiB)"
    assert platform == 0, f"platform {platform}, want 0"
    assert scatter == 0 and team == 0, f"scatterOffset {scatter} / teamOffset {team}: want none in an ad-hoc signature"
    assert code_limit == dataoff, f"codeLimit {code_limit:#x} != the signature's offset {dataoff:#x}"
    assert code_limit64 == 0, f"codeLimit64 {code_limit64:#x}: want 0 (codeLimit fits 32 bits)"
    page = 1 << page_shift
    assert n_code == (code_limit + page - 1) // page, (
        f"nCodeSlots {n_code}, want ceil({code_limit:#x} / {page:#x}) = {(code_limit + page - 1) // page}")
    assert hash_off - n_special * hash_size >= 44 and hash_off + n_code * hash_size <= cdlen, (
        f"hash slots [{hash_off - n_special * hash_size}, {hash_off + n_code * hash_size}) are outside the "
        f"CodeDirectory ({cdlen} bytes)")
    assert 44 <= ident_off < cdlen, f"identOffset {ident_off} is outside the CodeDirectory"
    e = cd.find(b"\0", ident_off, cdlen)
    assert e > ident_off, "the identifier is empty or not NUL-terminated"
    out["identifier"] = cd[ident_off:e].decode("utf-8", "replace")

    bad = []
    for i in range(n_code):
        want = hashlib.sha256(data[i * page:min((i + 1) * page, code_limit)]).digest()
        got = cd[hash_off + i * hash_size:hash_off + (i + 1) * hash_size]
        if got != want:
            bad.append(i)
    assert not bad, f"code page hashes differ for pages {bad[:10]}{' ...' if len(bad) > 10 else ''} of {n_code}"
    for k in range(1, n_special + 1):
        got = cd[hash_off - k * hash_size:hash_off - (k - 1) * hash_size]
        if k in blobs:
            assert got == hashlib.sha256(blobs[k][1]).digest(), f"special slot -{k} does not hash blob type {k}"
        else:
            assert got == bytes(hash_size), f"special slot -{k} is not zero, but there is no blob of type {k}"

    text = [s for s in segs if s["name"] == "__TEXT"]
    assert text, "no __TEXT segment"
    assert es_base == text[0]["fileoff"], f"execSegBase {es_base:#x} != __TEXT fileoff {text[0]['fileoff']:#x}"
    assert es_limit == text[0]["filesize"], f"execSegLimit {es_limit:#x} != __TEXT filesize {text[0]['filesize']:#x}"
    if filetype == MH_EXECUTE:
        assert es_flags & CS_EXECSEG_MAIN_BINARY, f"execSegFlags {es_flags:#x} lack CS_EXECSEG_MAIN_BINARY (0x1)"
    return out
