import collections,statistics as st,sys
# cmp3.py FILE [skip_rounds]: medians per model and cell, and paired ratios against 'baton' and 'asio'
rows=[l.split() for l in open(sys.argv[1])]
skip=int(sys.argv[2]) if len(sys.argv)>2 else 0
d=collections.defaultdict(list)
for r in rows: d[(r[0],r[1],r[2])].append([float(x) for x in r[3:]])
models=[]; cells=[]
for r in rows:
    if r[0] not in models: models.append(r[0])
    if (r[1],r[2]) not in cells: cells.append((r[1],r[2]))
for c in cells:
    print('T=%s slow=%s'%c)
    for m in models:
        v=d[(m,)+c][skip:]
        line='  %-6s n=%d p50 %4.0f p99 %5.0f p999 %6.0f rate %6.0f'%(m,len(v),st.median(x[0] for x in v),st.median(x[1] for x in v),st.median(x[2] for x in v),st.median(x[3] for x in v))
        for ref in ('baton','asio'):
            if m!=ref and (ref,)+c in d:
                w=d[(ref,)+c][skip:]; n=min(len(v),len(w))
                rr=[v[i][1]/w[i][1] for i in range(n)]; r9=[v[i][2]/w[i][2] for i in range(n)]
                line+='  | /%s p99 %.2f (<=1 in %d/%d) p999 %.2f'%(ref,st.median(rr),sum(x<=1 for x in rr),n,st.median(r9))
        print(line)
