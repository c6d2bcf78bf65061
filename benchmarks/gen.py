"""gen: write the synthetic benchmark program (program.py) as GNU assembly.

One file per function object (o<k>.s) and main.s; the runner assembles them
with GNU as and links the .o files with every linker. Deterministic from the
seed. Usage:

    python benchmarks/gen.py --size medium -o /tmp/bench/medium
    python benchmarks/gen.py --funcs 1000 --objects 10 -o DIR
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from program import BSS_SLOTS, Program, generator_main, write_manifest  # noqa: E402


def asm_string(t: str) -> str:
    """asm_string is t as a GNU as string literal."""
    return '"' + t.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def const_labels(p: Program, i: int) -> tuple[str, str]:
    """const_labels are the labels of f<i>'s constant and pointer in .rodata:
    assembler-local (.L, no symbol), or with shape.locals local symbols named
    as gcc names its own (NAME.k, NAME.p)."""
    n = p.name(i)
    return (f"{n}.k", f"{n}.p") if p.shape.locals else (f".Lk{i}", f".Lp{i}")


def function(p: Program, i: int) -> str:
    """function is the text of f<i>; the order of instructions is the model's.
    The shape decides its names, its section, and whether the bss adds sit in a
    local helper (as gcc's `.part.0` split would) and a string's byte is read."""
    sh = p.shape
    k = p.obj_of(i)
    c = p.callees[i].tolist()
    n = p.name(i)
    mix = "\timulq $31, %rbx, %rbx\n\taddq %rax, %rbx\n"
    lk, lp = const_labels(p, i)
    sec = f'\t.section .text.{n},"ax",@progbits\n' if sh.function_sections else ""
    adds = (f"\taddq %rbx, b{k}+{8 * int(p.own_slot[i])}(%rip)\n"
            f"\taddq %rbx, b{int(p.other_obj[i])}+{8 * int(p.other_slot[i])}(%rip)\n")
    body = [sec]
    if sh.locals:
        hsec = (f'\t.section .text.{n}.part.0,"ax",@progbits\n'
                if sh.function_sections else "")
        body.append(f"{hsec}\t.type {n}.part.0, @function\n\t.p2align 4\n{n}.part.0:\n"
                    f"{adds}\tret\n\t.size {n}.part.0, .-{n}.part.0\n{sec}")
        adds = f"\tcall {n}.part.0\n"
    body.append(f"\t.globl {n}\n\t.type {n}, @function\n\t.p2align 4\n{n}:\n"
                "\tpushq %rbx\n\tpushq %r12\n\tmovl %edi, %r12d\n"
                f"\tmovq {lk}(%rip), %rbx\n")
    if sh.strings:
        last = len(p.strings[i].encode()) - 1
        body.append(f"\tmovzbl .Ls{i}+{last}(%rip), %eax\n\taddq %rax, %rbx\n")
    body.append(adds + f"\ttestl %r12d, %r12d\n\tjz .Lr{i}\n")
    for j in c[:p.calls]:
        body.append(f"\txorl %edi, %edi\n\tcall {p.name(j)}\n{mix}")
    body.append(f"\tleaq {p.name(c[p.calls])}(%rip), %rcx\n\txorl %edi, %edi\n"
                f"\tcall *%rcx\n{mix}")
    body.append(f"\tmovq {lp}(%rip), %rcx\n\txorl %edi, %edi\n\tcall *%rcx\n{mix}")
    body.append(f".Lr{i}:\n\tmovq %rbx, %rax\n\tpopq %r12\n\tpopq %rbx\n\tret\n")
    if sh.locals > 3:   # labels a compiler leaves behind (cold-path ends, jump targets)
        body.append("".join(f"{n}.l{m}:\n" for m in range(sh.locals - 3)))
    body.append(f"\t.size {n}, .-{n}\n")
    return "".join(body)


def object_source(p: Program, k: int) -> str:
    sh = p.shape
    lo, hi = k * p.per, (k + 1) * p.per
    out = ["\t.text\n"]
    out += [function(p, i) for i in range(lo, hi)]
    for i in range(lo, hi):
        n = p.name(i)
        lk, lp = const_labels(p, i)
        sec = (f'\t.section .rodata.{n},"a"\n' if sh.function_sections
               else ("\t.section .rodata\n" if i == lo else ""))
        out.append(f"{sec}\t.p2align 3\n{lk}:\n\t.quad {int(p.K[i])}\n"
                   f"{lp}:\n\t.quad {p.name(int(p.callees[i, -1]))}\n")
    if sh.strings:
        out.append('\t.section .rodata.str1.1,"aMS",@progbits,1\n')
        out += [f".Ls{i}:\n\t.asciz {asm_string(p.strings[i])}\n" for i in range(lo, hi)]
    dsec = f'\t.section .data.t{k},"aw"\n' if sh.function_sections else "\t.data\n"
    out.append(f"{dsec}\t.globl t{k}\n\t.p2align 3\nt{k}:\n")
    row = "".join(f"\t.quad {p.name(i)}\n" for i in range(lo, hi))
    out.append(row * p.table_reps)
    out.append(f"\t.size t{k}, .-t{k}\n")
    bsec = f'\t.section .bss.b{k},"aw",@nobits\n' if sh.function_sections else "\t.bss\n"
    out.append(f"{bsec}\t.globl b{k}\n\t.p2align 3\nb{k}:\n\t.zero {8 * BSS_SLOTS}\n"
               f"\t.size b{k}, .-b{k}\n")
    return "".join(out)


def main_source(p: Program) -> str:
    n = p.per * p.table_reps
    runs = "".join(f"\tleaq t{k}(%rip), %rdi\n\tmovl ${n}, %esi\n\tcall run_table\n"
                   for k in range(p.objects))
    folds = "".join(f"\tleaq b{k}(%rip), %rdi\n\tcall sum_bss\n" for k in range(p.objects))
    return f"""\t.text
\t.globl _start, run_table, sum_bss
_start:
\txorl %r15d, %r15d
{runs}{folds}\tleaq hexdigits(%rip), %rsi
\tleaq outbuf(%rip), %rdi
\tmovq %r15, %rax
\tmovl $16, %ecx
1:\tmovl %eax, %edx
\tandl $15, %edx
\tmovb (%rsi,%rdx), %dl
\tmovb %dl, -1(%rdi,%rcx)
\tshrq $4, %rax
\tdecl %ecx
\tjnz 1b
\tmovb $10, 16(%rdi)
\tmovq %rdi, %rsi
\tmovl $1, %edi
\tmovl $17, %edx
\tmovl $1, %eax
\tsyscall
\tmovl %r15d, %edi
\tandl $255, %edi
\tmovl $60, %eax
\tsyscall

# run_table(rdi = table, esi = entries): acc = acc*33 + entry(1) for each entry.
run_table:
\tpushq %rbx
\tpushq %r12
\tmovq %rdi, %rbx
\tmovl %esi, %r12d
2:\tmovl $1, %edi
\tcall *(%rbx)
\timulq $33, %r15, %r15
\taddq %rax, %r15
\taddq $8, %rbx
\tdecl %r12d
\tjnz 2b
\tpopq %r12
\tpopq %rbx
\tret

# sum_bss(rdi = array of {BSS_SLOTS} quadwords): acc = acc*33 + slot for each slot.
sum_bss:
\tmovl ${BSS_SLOTS}, %ecx
3:\timulq $33, %r15, %r15
\taddq (%rdi), %r15
\taddq $8, %rdi
\tdecl %ecx
\tjnz 3b
\tret

\t.section .rodata
hexdigits:
\t.ascii "0123456789abcdef"
\t.bss
outbuf:
\t.zero 24
"""


def write(p: Program, outdir: str, seed: int) -> dict:
    """write writes the sources and manifest.json (sizes, expected output); returns it."""
    os.makedirs(outdir, exist_ok=True)
    names = []
    for k in range(p.objects):
        names.append(f"o{k}.s")
        with open(os.path.join(outdir, names[-1]), "w") as f:
            f.write(object_source(p, k))
    names.append("main.s")
    with open(os.path.join(outdir, "main.s"), "w") as f:
        f.write(main_source(p))
    return write_manifest(p, outdir, seed, "sources", names, p.relocations())


def main(argv=None) -> None:
    generator_main(write, __doc__, "sources", argv)


if __name__ == "__main__":
    main()
