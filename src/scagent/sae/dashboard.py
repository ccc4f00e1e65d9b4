"""One self-contained HTML page to browse SAE features: search, sort, genes, cell types, enrichment.

Everything is inline (data as JSON, CSS, JS; no network). Opening the page with the URL
hash ``#selftest`` runs a small in-page check (render, search filters the list, detail
panel) and writes its JSON result into ``<pre id="selftest-result">``, which a headless
browser's ``--dump-dom`` reads.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scagent._atomic import atomic_write_text
from scagent.sae.features import FeatureResult

__all__ = ["build_dashboard", "dashboard_data"]


def dashboard_data(
    features: FeatureResult,
    validation: dict[str, Any] | None = None,
    enrichment: pd.DataFrame | None = None,
    n_genes: int = 15,
    n_hits: int = 5,
    max_features: int | None = None,
) -> dict[str, Any]:
    """The JSON the page renders: one record per live feature."""
    feats = features.features
    feats = feats[feats["frequency"] > 0].sort_values("frequency", ascending=False)
    if max_features:
        feats = feats.head(max_features)
    keep = set(feats["feature"].astype(int))
    genes = features.genes[
        features.genes["feature"].isin(keep) & (features.genes["rank"] <= n_genes)
    ]
    gene_map = {
        int(f): [
            [str(g), round(float(s), 4)] for g, s in zip(sub["gene"], sub["score"], strict=True)
        ]
        for f, sub in genes.sort_values(["feature", "rank"]).groupby("feature")
    }
    group_map: dict[int, list] = {}
    if len(features.groups):
        groups = features.groups[features.groups["feature"].isin(keep)]
        for f, sub in groups.groupby("feature"):
            sub = sub.sort_values("mean_activation", ascending=False)
            group_map[int(f)] = [
                [str(g), round(float(m), 4), round(float(a), 4)]
                for g, m, a in zip(
                    sub["group"], sub["mean_activation"], sub["frac_active"], strict=True
                )
            ]
    hit_map: dict[int, list] = {}
    if enrichment is not None and len(enrichment):
        enr = enrichment[enrichment["feature"].isin(keep) & (enrichment["odds_ratio"] > 1)]
        for f, sub in enr.sort_values("pvalue").groupby("feature"):
            hit_map[int(f)] = [
                [str(s), float(f"{q:.3g}"), int(o), str(gl)]
                for s, q, o, gl in zip(
                    sub["gene_set"][:n_hits],
                    sub["fdr"][:n_hits],
                    sub["overlap"][:n_hits],
                    sub["genes"][:n_hits],
                    strict=True,
                )
            ]
    hists = features.info.get("histograms", {})
    records = []
    for row in feats.itertuples(index=False):
        f = int(row.feature)
        hits = hit_map.get(f, [])
        records.append(
            {
                "id": f,
                "freq": round(float(row.frequency), 5),
                "mean": round(float(row.mean_activation), 4),
                "spec": round(float(row.specificity), 4),
                "group": str(row.top_group),
                "genes": gene_map.get(f, []),
                "groups": group_map.get(f, []),
                "hist": hists.get(f) or hists.get(str(f)),
                "hits": hits,
                "best_fdr": min((h[1] for h in hits), default=1.0),
            }
        )
    info = {k: v for k, v in features.info.items() if k not in ("histograms", "gene_universe")}
    return {"info": info, "validation": validation or {}, "features": records}


_CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2433;background:#f5f6f8}
header{padding:12px 20px;background:#1d2433;color:#fff}header h1{margin:0;font-size:18px}header p{margin:4px 0 0;color:#c7cbd6;font-size:13px}
.bar{display:flex;gap:8px;padding:10px 20px;background:#fff;border-bottom:1px solid #dde1e8;align-items:center}
.bar input{flex:1;padding:6px 10px;border:1px solid #c3c9d4;border-radius:4px;font-size:14px}.bar select{padding:6px}
main{display:grid;grid-template-columns:minmax(320px,38%) 1fr;gap:0;height:calc(100vh - 110px)}
#list{overflow:auto;background:#fff;border-right:1px solid #dde1e8}#list table{width:100%;border-collapse:collapse}
#list th{position:sticky;top:0;background:#eef0f4;text-align:left;padding:6px 8px;font-size:12px}
#list td{padding:5px 8px;border-bottom:1px solid #eef0f4;font-size:13px;vertical-align:top}#list tr.row{cursor:pointer}
#list tr.row:hover{background:#f0f4ff}#list tr.sel{background:#dce6ff}.muted{color:#6b7385}.gl{font-size:12px;color:#3b4660}
#detail{overflow:auto;padding:16px 22px}#detail h2{margin:0 0 6px;font-size:17px}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:14px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 12px}.card h3{margin:0 0 8px;font-size:13px;text-transform:uppercase;color:#4a5570}
.hb{display:flex;align-items:center;gap:6px;margin:2px 0;font-size:12px}.hb span.l{width:130px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.hb span.b{height:11px;background:#4c6ef5;border-radius:2px}.hb span.v{color:#6b7385}
.hist{display:flex;align-items:flex-end;gap:1px;height:90px}.hist div{flex:1;background:#12b886;min-height:1px}
table.h{border-collapse:collapse;width:100%;font-size:12px}table.h td,table.h th{padding:3px 5px;border-bottom:1px solid #eef0f4;text-align:left}
.pill{display:inline-block;padding:1px 6px;border-radius:9px;background:#e7f5ff;color:#1864ab;font-size:11px;margin-left:4px}
#selftest-result{display:none}
"""

_JS = r"""
(function(){
const errors=[];
window.addEventListener('error',e=>errors.push(String(e.message||e)));
const origErr=console.error;console.error=function(){errors.push(Array.from(arguments).join(' '));origErr.apply(console,arguments)};
const D=JSON.parse(document.getElementById('sae-data').textContent);
const F=D.features;const q=document.getElementById('q');const sortSel=document.getElementById('sort');
const tbody=document.getElementById('rows');const detail=document.getElementById('detail');const count=document.getElementById('count');
let selected=F.length?F[0].id:null;
function esc(s){return String(s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]))}
function matches(f,term){if(!term)return true;term=term.toLowerCase();
 if(String(f.id)===term)return true;
 if(f.genes.some(g=>g[0].toLowerCase()===term||g[0].toLowerCase().startsWith(term)))return true;
 if(f.group.toLowerCase().includes(term))return true;
 if(f.hits.some(h=>h[0].toLowerCase().includes(term)))return true;return false}
function sorted(list){const k=sortSel.value;const c=list.slice();
 if(k==='frequency')c.sort((a,b)=>b.freq-a.freq);else if(k==='specificity')c.sort((a,b)=>b.spec-a.spec);
 else if(k==='enrichment')c.sort((a,b)=>a.best_fdr-b.best_fdr);else c.sort((a,b)=>a.id-b.id);return c}
function visible(){return sorted(F.filter(f=>matches(f,q.value.trim())))}
function renderList(){const v=visible();count.textContent=v.length+' of '+F.length+' features';
 tbody.innerHTML=v.map(f=>'<tr class="row'+(f.id===selected?' sel':'')+'" data-id="'+f.id+'"><td>#'+f.id+
 (f.best_fdr<0.05?'<span class="pill">enriched</span>':'')+'</td><td>'+(100*f.freq).toFixed(1)+'%</td><td>'+f.spec.toFixed(2)+
 '</td><td>'+esc(f.group)+'<div class="gl">'+esc(f.genes.slice(0,6).map(g=>g[0]).join(', '))+'</div></td></tr>').join('');
 return v}
function bars(items,label,val,extra){if(!items.length)return '<p class="muted">none</p>';const mx=Math.max(...items.map(val))||1;
 return items.map(it=>'<div class="hb"><span class="l" title="'+esc(label(it))+'">'+esc(label(it))+'</span><span class="b" style="width:'+
 Math.max(1,Math.round(160*val(it)/mx))+'px"></span><span class="v">'+extra(it)+'</span></div>').join('')}
function renderDetail(id){const f=F.find(x=>x.id===id);if(!f){detail.innerHTML='<p class="muted">No feature selected.</p>';return}
 let hist='<p class="muted">no histogram</p>';
 if(f.hist){const mx=Math.max(...f.hist.counts)||1;hist='<div class="hist">'+f.hist.counts.map(c=>'<div title="'+c+'" style="height:'+
  Math.round(100*c/mx)+'%"></div>').join('')+'</div><div class="muted" style="font-size:11px">activation 0 – '+f.hist.bins[f.hist.bins.length-1]+' (active cells)</div>'}
 const hits=f.hits.length?'<table class="h"><tr><th>gene set</th><th>FDR</th><th>overlap</th><th>genes</th></tr>'+f.hits.map(h=>
  '<tr><td>'+esc(h[0])+'</td><td>'+h[1]+'</td><td>'+h[2]+'</td><td>'+esc(h[3])+'</td></tr>').join('')+'</table>':'<p class="muted">no enriched gene set</p>';
 detail.innerHTML='<h2>Feature #'+f.id+'</h2><p class="muted">active in '+(100*f.freq).toFixed(2)+'% of cells · mean activation '+f.mean+
 ' · specificity '+f.spec+' · top group '+esc(f.group)+'</p><div class="cards">'+
 '<div class="card" id="card-genes"><h3>Top genes</h3>'+bars(f.genes,g=>g[0],g=>Math.max(g[1],0),g=>g[1])+'</div>'+
 '<div class="card" id="card-groups"><h3>Cell types</h3>'+bars(f.groups,g=>g[0],g=>g[1],g=>g[1]+' · '+(100*g[2]).toFixed(0)+'% active')+'</div>'+
 '<div class="card"><h3>Activation histogram</h3>'+hist+'</div>'+
 '<div class="card" id="card-hits"><h3>Enrichment</h3>'+hits+'</div></div>'}
function select(id){selected=id;renderList();renderDetail(id)}
tbody.addEventListener('click',e=>{const tr=e.target.closest('tr.row');if(tr)select(Number(tr.dataset.id))});
q.addEventListener('input',()=>{const v=renderList();if(v.length&&!v.some(f=>f.id===selected))select(v[0].id)});
sortSel.addEventListener('change',renderList);
const V=D.validation||{};const s=document.getElementById('summary');
if(V.share_significant!==undefined){s.textContent='enriched features: '+(100*V.share_significant).toFixed(1)+'% vs random-direction null '+
 (100*V.null_share_significant).toFixed(1)+'% (FDR < '+V.fdr_threshold+')'}
renderList();renderDetail(selected);
if(location.hash==='#selftest'){
 const out={n_features:F.length,errors:errors};
 try{out.rows_initial=tbody.querySelectorAll('tr.row').length;
  const withGenes=F.find(f=>f.genes.length);const term=withGenes?withGenes.genes[0][0]:'';out.term=term;
  q.value=term;q.dispatchEvent(new Event('input'));out.rows_filtered=tbody.querySelectorAll('tr.row').length;
  out.all_match=Array.from(tbody.querySelectorAll('tr.row')).every(tr=>matches(F.find(f=>f.id===Number(tr.dataset.id)),term));
  q.value='zzzz-no-such-gene';q.dispatchEvent(new Event('input'));out.rows_nonsense=tbody.querySelectorAll('tr.row').length;
  q.value='';q.dispatchEvent(new Event('input'));sortSel.value='specificity';sortSel.dispatchEvent(new Event('change'));
  const first=tbody.querySelector('tr.row');if(first){first.click();}
  out.detail_title=(detail.querySelector('h2')||{}).textContent||'';out.gene_bars=detail.querySelectorAll('#card-genes .hb').length;
  out.group_bars=detail.querySelectorAll('#card-groups .hb').length;
 }catch(e){errors.push(String(e))}
 out.errors=errors;out.ok=errors.length===0;const pre=document.getElementById('selftest-result');pre.textContent=JSON.stringify(out);
}
})();
"""


def build_dashboard(
    features: FeatureResult,
    path: str | os.PathLike[str],
    validation: dict[str, Any] | None = None,
    enrichment: pd.DataFrame | None = None,
    title: str = "SAE features",
    max_features: int | None = 5000,
) -> Path:
    """Write the dashboard HTML to ``path`` (atomically) and return the path."""
    data = dashboard_data(features, validation, enrichment, max_features=max_features)
    payload = json.dumps(data, default=_json_default, separators=(",", ":")).replace("</", "<\\/")
    info = data["info"]
    subtitle = (
        f"{info.get('d_sae', '?')} features (k={info.get('k', '?')}) · source {info.get('source', '?')} · "
        f"{info.get('n_cells', '?')} cells · grouped by {info.get('groupby') or '—'} · genes: {info.get('gene_score', '?')}"
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p><p id="summary"></p></header>
<div class="bar"><input id="q" type="search" placeholder="Search a gene, cell type, gene set or feature id" aria-label="search">
<select id="sort" aria-label="sort"><option value="frequency">sort: frequency</option><option value="specificity">sort: specificity</option>
<option value="enrichment">sort: enrichment</option><option value="id">sort: id</option></select><span id="count" class="muted"></span></div>
<main><div id="list"><table><thead><tr><th>feature</th><th>freq</th><th>spec</th><th>top group · genes</th></tr></thead>
<tbody id="rows"></tbody></table></div><div id="detail"></div></main>
<pre id="selftest-result"></pre>
<script id="sae-data" type="application/json">{payload}</script>
<script>{_JS}</script></body></html>
"""
    atomic_write_text(path, page)
    return Path(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
