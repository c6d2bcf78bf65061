// Command plan9dump is an independent parser oracle for plan 9 a.out files.
//
// It reads a file with Go's standard library debug/plan9obj, which minild
// does not share any code with, and prints what that package sees as JSON:
//
//	{"magic", "bss", "entry", "ptrsize", "loadaddress", "hdrsize",
//	 "header":   {"magic","text","data","bss","syms","entry","spsz","pcsz"},
//	 "sections": [{"name","size","offset"}...],
//	 "symbols":  [{"name","type","value"}...]}
//
// "header" gives the eight header words as plan9obj reports them (the sizes
// through its sections; "entry" is the full entry point, which for a 64-bit
// header is the 8-byte word after the classic 32-byte header).
//
// Every section is read in full, so a file shorter than its header claims is
// an error. On any error the message goes to stderr and the exit status is 1.
//
// Usage: plan9dump [-raw] FILE
//
// With -raw only the "header" object is printed.
package main

import (
	"debug/plan9obj"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

type section struct {
	Name   string `json:"name"`
	Size   uint32 `json:"size"`
	Offset uint32 `json:"offset"`
}

type symbol struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value uint64 `json:"value"`
}

type header struct {
	Magic uint32 `json:"magic"`
	Text  uint32 `json:"text"`
	Data  uint32 `json:"data"`
	Bss   uint32 `json:"bss"`
	Syms  uint32 `json:"syms"`
	Entry uint64 `json:"entry"`
	Spsz  uint32 `json:"spsz"`
	Pcsz  uint32 `json:"pcsz"`
}

type dump struct {
	Magic       uint32    `json:"magic"`
	Bss         uint32    `json:"bss"`
	Entry       uint64    `json:"entry"`
	PtrSize     int       `json:"ptrsize"`
	LoadAddress uint64    `json:"loadaddress"`
	HdrSize     uint64    `json:"hdrsize"`
	Header      header    `json:"header"`
	Sections    []section `json:"sections"`
	Symbols     []symbol  `json:"symbols"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "plan9dump: "+format+"\n", args...)
	os.Exit(1)
}

func sectionSize(f *plan9obj.File, name string) uint32 {
	s := f.Section(name)
	if s == nil {
		fail("no %s section", name)
	}
	return s.Size
}

func main() {
	raw := flag.Bool("raw", false, "print only the header words")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: plan9dump [-raw] FILE\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	path := flag.Arg(0)

	f, err := plan9obj.Open(path)
	if err != nil {
		fail("%s: %v", path, err)
	}
	defer f.Close()

	d := dump{
		Magic:       f.Magic,
		Bss:         f.Bss,
		Entry:       f.Entry,
		PtrSize:     f.PtrSize,
		LoadAddress: f.LoadAddress,
		HdrSize:     f.HdrSize,
		Sections:    []section{},
		Symbols:     []symbol{},
	}
	d.Header = header{
		Magic: f.Magic,
		Text:  sectionSize(f, "text"),
		Data:  sectionSize(f, "data"),
		Bss:   f.Bss,
		Syms:  sectionSize(f, "syms"),
		Entry: f.Entry,
		Spsz:  sectionSize(f, "spsz"),
		Pcsz:  sectionSize(f, "pcsz"),
	}

	for _, s := range f.Sections {
		// plan9obj reads sections lazily; read each one so that a file
		// shorter than its header says is reported, not silently accepted.
		if _, err := s.Data(); err != nil {
			fail("%s: section %s (offset %#x, size %#x): %v", path, s.Name, s.Offset, s.Size, err)
		}
		d.Sections = append(d.Sections, section{Name: s.Name, Size: s.Size, Offset: s.Offset})
	}

	syms, err := f.Symbols()
	if err != nil {
		fail("%s: symbols: %v", path, err)
	}
	for _, s := range syms {
		d.Symbols = append(d.Symbols, symbol{Name: s.Name, Type: string(s.Type), Value: s.Value})
	}

	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if *raw {
		err = enc.Encode(d.Header)
	} else {
		err = enc.Encode(d)
	}
	if err != nil {
		fail("writing JSON: %v", err)
	}
}
