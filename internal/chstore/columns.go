package chstore

import "unsafe"

// EventColumns holds rows of the events table column by column, in
// buffers without pointers: rows waiting for their INSERT cost the garbage
// collector nothing to scan, and adding one allocates nothing once the
// buffers have grown (Reset keeps them). The zero value is empty and ready.
type EventColumns struct {
	n    int
	bufs []colBuf // one for each of eventColumns
}

// colBuf is one column's values: strings (and the elements of arrays)
// back to back in bytes, each ending at its ends entry; numbers, or the
// running element count of an array column, in nums.
type colBuf struct {
	bytes []byte
	ends  []int
	nums  []uint64
}

// Add appends r.
func (c *EventColumns) Add(r *EventRow) {
	if c.bufs == nil {
		c.bufs = make([]colBuf, len(eventColumns))
	}
	for i := range eventColumns {
		eventColumns[i].add(&c.bufs[i], r)
	}
	c.n++
}

// Append appends the rows of o.
func (c *EventColumns) Append(o *EventColumns) {
	if o.n == 0 {
		return
	}
	if c.bufs == nil {
		c.bufs = make([]colBuf, len(eventColumns))
	}
	for i := range c.bufs {
		b, ob := &c.bufs[i], &o.bufs[i]
		bytes, elements := len(b.bytes), uint64(len(b.ends))
		b.bytes = append(b.bytes, ob.bytes...)
		for _, e := range ob.ends {
			b.ends = append(b.ends, bytes+e)
		}
		if !eventColumns[i].array {
			b.nums = append(b.nums, ob.nums...)
			continue
		}
		for _, n := range ob.nums {
			b.nums = append(b.nums, elements+n)
		}
	}
	c.n += o.n
}

// Len returns the number of rows.
func (c *EventColumns) Len() int { return c.n }

// Reset empties c and keeps its buffers for the next rows.
func (c *EventColumns) Reset() {
	for i := range c.bufs {
		b := &c.bufs[i]
		b.bytes, b.ends, b.nums = b.bytes[:0], b.ends[:0], b.nums[:0]
	}
	c.n = 0
}

// Row returns a copy of row i.
func (c *EventColumns) Row(i int) EventRow {
	var r EventRow
	for j := range eventColumns {
		eventColumns[j].get(&c.bufs[j], i, &r)
	}
	return r
}

func (b *colBuf) addString(v string) {
	b.bytes = append(b.bytes, v...)
	b.ends = append(b.ends, len(b.bytes))
}

// view returns string i, pointing into b: valid until b is reset.
func (b *colBuf) view(i int) string {
	var start int
	if i > 0 {
		start = b.ends[i-1]
	}
	end := b.ends[i]
	if start == end {
		return ""
	}
	return unsafe.String(&b.bytes[start], end-start)
}

// elements returns the strings [first, end) of array row i.
func (b *colBuf) elements(i int) (first, end int) {
	if i > 0 {
		first = int(b.nums[i-1])
	}
	return first, int(b.nums[i])
}
