// Command machodump is an independent parser oracle for Mach-O files.
//
// It reads a file with Go's standard library debug/macho, which minild does not
// share any code with, and prints what that package sees as JSON:
//
//	{"cpu", "cpu_name", "subcpu", "type", "flags", "ncmd", "cmdsz",
//	 "loads":    [{"cmd", "name", "size"}...],          // every load command, in order
//	 "segments": [{"name","addr","memsz","offset","filesz","maxprot","prot","nsect","flag"}...],
//	 "sections": [{"name","seg","addr","size","offset","align","reloff","nreloc","flags"}...],
//	 "symbols":  [{"name","type","sect","desc","value"}...],
//	 "indirect": [n...],                                 // Dysymtab.IndirectSyms
//	 "dysymtab": {"ilocalsym", "nlocalsym", ..., "nindirectsyms", ...} or null,
//	 "dylibs":   [...],                                  // ImportedLibraries
//	 "imported": [...]}                                  // ImportedSymbols
//
// Load command names come from this program's own table (from <mach-o/loader.h>),
// since Go 1.19's LoadCmd.String knows only a few; an unknown command is "LC_0x...".
//
// Go's reader is lenient about segment file ranges, so this program reads every
// segment's and every section's data (zero-fill sections excepted): a file shorter
// than its load commands claim is an error here.
//
// On any error the message goes to stderr and the exit status is 1.
//
// Usage: machodump FILE
package main

import (
	"debug/macho"
	"encoding/json"
	"fmt"
	"os"
)

var lcNames = map[uint32]string{
	0x1: "LC_SEGMENT", 0x2: "LC_SYMTAB", 0x3: "LC_SYMSEG", 0x4: "LC_THREAD", 0x5: "LC_UNIXTHREAD",
	0x6: "LC_LOADFVMLIB", 0x7: "LC_IDFVMLIB", 0x8: "LC_IDENT", 0x9: "LC_FVMFILE", 0xa: "LC_PREPAGE",
	0xb: "LC_DYSYMTAB", 0xc: "LC_LOAD_DYLIB", 0xd: "LC_ID_DYLIB", 0xe: "LC_LOAD_DYLINKER",
	0xf: "LC_ID_DYLINKER", 0x10: "LC_PREBOUND_DYLIB", 0x11: "LC_ROUTINES", 0x12: "LC_SUB_FRAMEWORK",
	0x13: "LC_SUB_UMBRELLA", 0x14: "LC_SUB_CLIENT", 0x15: "LC_SUB_LIBRARY", 0x16: "LC_TWOLEVEL_HINTS",
	0x17: "LC_PREBIND_CKSUM", 0x80000018: "LC_LOAD_WEAK_DYLIB", 0x19: "LC_SEGMENT_64",
	0x1a: "LC_ROUTINES_64", 0x1b: "LC_UUID", 0x8000001c: "LC_RPATH", 0x1d: "LC_CODE_SIGNATURE",
	0x1e: "LC_SEGMENT_SPLIT_INFO", 0x8000001f: "LC_REEXPORT_DYLIB", 0x20: "LC_LAZY_LOAD_DYLIB",
	0x21: "LC_ENCRYPTION_INFO", 0x22: "LC_DYLD_INFO", 0x80000022: "LC_DYLD_INFO_ONLY",
	0x80000023: "LC_LOAD_UPWARD_DYLIB", 0x24: "LC_VERSION_MIN_MACOSX", 0x25: "LC_VERSION_MIN_IPHONEOS",
	0x26: "LC_FUNCTION_STARTS", 0x27: "LC_DYLD_ENVIRONMENT", 0x80000028: "LC_MAIN",
	0x29: "LC_DATA_IN_CODE", 0x2a: "LC_SOURCE_VERSION", 0x2b: "LC_DYLIB_CODE_SIGN_DRS",
	0x2c: "LC_ENCRYPTION_INFO_64", 0x2d: "LC_LINKER_OPTION", 0x2e: "LC_LINKER_OPTIMIZATION_HINT",
	0x2f: "LC_VERSION_MIN_TVOS", 0x30: "LC_VERSION_MIN_WATCHOS", 0x31: "LC_NOTE",
	0x32: "LC_BUILD_VERSION", 0x80000033: "LC_DYLD_EXPORTS_TRIE", 0x80000034: "LC_DYLD_CHAINED_FIXUPS",
	0x80000035: "LC_FILESET_ENTRY",
}

type load struct {
	Cmd  uint32 `json:"cmd"`
	Name string `json:"name"`
	Size int    `json:"size"`
}

type segment struct {
	Name    string `json:"name"`
	Addr    uint64 `json:"addr"`
	Memsz   uint64 `json:"memsz"`
	Offset  uint64 `json:"offset"`
	Filesz  uint64 `json:"filesz"`
	Maxprot uint32 `json:"maxprot"`
	Prot    uint32 `json:"prot"`
	Nsect   uint32 `json:"nsect"`
	Flag    uint32 `json:"flag"`
}

type section struct {
	Name   string `json:"name"`
	Seg    string `json:"seg"`
	Addr   uint64 `json:"addr"`
	Size   uint64 `json:"size"`
	Offset uint32 `json:"offset"`
	Align  uint32 `json:"align"`
	Reloff uint32 `json:"reloff"`
	Nreloc uint32 `json:"nreloc"`
	Flags  uint32 `json:"flags"`
}

type symbol struct {
	Name  string `json:"name"`
	Type  uint8  `json:"type"`
	Sect  uint8  `json:"sect"`
	Desc  uint16 `json:"desc"`
	Value uint64 `json:"value"`
}

type dump struct {
	Cpu      uint32            `json:"cpu"`
	CpuName  string            `json:"cpu_name"`
	SubCpu   uint32            `json:"subcpu"`
	Type     uint32            `json:"type"`
	Flags    uint32            `json:"flags"`
	Ncmd     uint32            `json:"ncmd"`
	Cmdsz    uint32            `json:"cmdsz"`
	Loads    []load            `json:"loads"`
	Segments []segment         `json:"segments"`
	Sections []section         `json:"sections"`
	Symbols  []symbol          `json:"symbols"`
	Indirect []uint32          `json:"indirect"`
	Dysymtab map[string]uint32 `json:"dysymtab"`
	Dylibs   []string          `json:"dylibs"`
	Imported []string          `json:"imported"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "machodump: "+format+"\n", args...)
	os.Exit(1)
}

const (
	sectionType     = 0xff
	sZerofill       = 0x1
	sGBZerofill     = 0xc
	sThreadZerofill = 0x12
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: machodump FILE\n")
		os.Exit(2)
	}
	path := os.Args[1]
	f, err := macho.Open(path)
	if err != nil {
		fail("%s: %v", path, err)
	}
	defer f.Close()

	d := dump{
		Cpu: uint32(f.Cpu), CpuName: f.Cpu.String(), SubCpu: f.SubCpu, Type: uint32(f.Type),
		Flags: f.Flags, Ncmd: f.Ncmd, Cmdsz: f.Cmdsz,
		Loads: []load{}, Segments: []segment{}, Sections: []section{}, Symbols: []symbol{},
		Indirect: []uint32{}, Dylibs: []string{}, Imported: []string{},
	}
	for i, l := range f.Loads {
		raw := l.Raw()
		if len(raw) < 8 {
			fail("%s: load command %d: only %d bytes", path, i, len(raw))
		}
		cmd := f.ByteOrder.Uint32(raw[0:4])
		name, ok := lcNames[cmd]
		if !ok {
			name = fmt.Sprintf("LC_%#x", cmd)
		}
		d.Loads = append(d.Loads, load{Cmd: cmd, Name: name, Size: len(raw)})
		if s, ok := l.(*macho.Segment); ok {
			if s.Filesz > 0 {
				if _, err := s.Data(); err != nil {
					fail("%s: segment %s (offset %#x, filesz %#x): %v", path, s.Name, s.Offset, s.Filesz, err)
				}
			}
			d.Segments = append(d.Segments, segment{Name: s.Name, Addr: s.Addr, Memsz: s.Memsz,
				Offset: s.Offset, Filesz: s.Filesz, Maxprot: s.Maxprot, Prot: s.Prot, Nsect: s.Nsect,
				Flag: s.Flag})
		}
	}
	for _, s := range f.Sections {
		t := s.Flags & sectionType
		if t != sZerofill && t != sGBZerofill && t != sThreadZerofill && s.Size > 0 {
			if _, err := s.Data(); err != nil {
				fail("%s: section %s,%s (offset %#x, size %#x): %v", path, s.Seg, s.Name, s.Offset, s.Size, err)
			}
		}
		d.Sections = append(d.Sections, section{Name: s.Name, Seg: s.Seg, Addr: s.Addr, Size: s.Size,
			Offset: s.Offset, Align: s.Align, Reloff: s.Reloff, Nreloc: s.Nreloc, Flags: s.Flags})
	}
	if f.Symtab != nil {
		for _, s := range f.Symtab.Syms {
			d.Symbols = append(d.Symbols, symbol{Name: s.Name, Type: s.Type, Sect: s.Sect, Desc: s.Desc,
				Value: s.Value})
		}
	}
	if f.Dysymtab != nil {
		c := f.Dysymtab.DysymtabCmd
		d.Dysymtab = map[string]uint32{
			"ilocalsym": c.Ilocalsym, "nlocalsym": c.Nlocalsym, "iextdefsym": c.Iextdefsym,
			"nextdefsym": c.Nextdefsym, "iundefsym": c.Iundefsym, "nundefsym": c.Nundefsym,
			"tocoffset": c.Tocoffset, "ntoc": c.Ntoc, "modtaboff": c.Modtaboff, "nmodtab": c.Nmodtab,
			"extrefsymoff": c.Extrefsymoff, "nextrefsyms": c.Nextrefsyms,
			"indirectsymoff": c.Indirectsymoff, "nindirectsyms": c.Nindirectsyms,
			"extreloff": c.Extreloff, "nextrel": c.Nextrel, "locreloff": c.Locreloff, "nlocrel": c.Nlocrel,
		}
		d.Indirect = append(d.Indirect, f.Dysymtab.IndirectSyms...)
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		fail("%s: imported libraries: %v", path, err)
	}
	d.Dylibs = append(d.Dylibs, libs...)
	syms, err := f.ImportedSymbols()
	if err != nil {
		fail("%s: imported symbols: %v", path, err)
	}
	d.Imported = append(d.Imported, syms...)

	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		fail("writing JSON: %v", err)
	}
}
